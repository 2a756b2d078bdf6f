"""Write a small ADE20k-format segmentation set, deterministic from a seed (CPU smoke tests, the toy config).

    python tools/make_toy_ade.py [--out data/toy_ade] [--seed 0] [--num-train 48] [--num-val 12]

Layout (as ``ADEChallengeData2016``)::

    OUT/images/{training,validation}/toy_XXXXX.jpg        RGB, non-square, 96..192 px a side
    OUT/annotations/{training,validation}/toy_XXXXX.png   uint8 label map

Label 0 is "other" and, as in ADE20k, is ignored through ``reduce_zero_label=True`` (0 -> 255, k -> k - 1).
Labels 1..4 are random shapes (disc, box, triangle) whose class is their colour *and* texture, so a small
model learns them in a few hundred iterations: see ``CLASSES`` / ``PALETTE`` (the toy config's ``metainfo``).
"""
import argparse
import os
import os.path as osp
from typing import Tuple

import numpy as np
from PIL import Image

CLASSES = ("red_plain", "green_grain", "blue_stripes", "magenta_checker")
PALETTE = [[220, 40, 40], [40, 180, 60], [40, 80, 220], [200, 60, 200]]
WIDTHS = (128, 144, 160, 176, 192)
HEIGHTS = (96, 112, 128, 144)


def _shape_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A random disc, box or triangle covering roughly 3-25% of the image."""
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = rng.uniform(0.15, 0.85) * h, rng.uniform(0.15, 0.85) * w
    r = rng.uniform(0.12, 0.28) * min(h, w)
    kind = rng.integers(3)
    if kind == 0:
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    if kind == 1:
        ry, rx = r * rng.uniform(0.6, 1.4), r * rng.uniform(0.6, 1.4)
        return (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)
    # triangle pointing up: inside when below the apex and within the widening edges
    top = cy - r
    return (yy >= top) & (yy <= cy + r) & (np.abs(xx - cx) <= (yy - top) * 0.6)


def _texture(rng: np.random.Generator, label: int, h: int, w: int) -> np.ndarray:
    """(h, w, 3) float texture of class ``label`` (1..4): colour jittered, pattern phase random."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.array(PALETTE[label - 1], np.float32) + rng.uniform(-25, 25, 3)
    img = np.broadcast_to(base, (h, w, 3)).copy()
    if label == 3:  # diagonal stripes, period 8 px
        on = ((xx + yy + rng.integers(8)) % 8) < 4
        img[on] = img[on] * 0.35 + 255 * 0.45
    elif label == 4:  # checkerboard, 6 px cells
        off = rng.integers(6, size=2)
        on = (((xx + off[0]) // 6 + (yy + off[1]) // 6) % 2) == 0
        img[on] = 255 - img[on]
    elif label == 2:  # faint horizontal grain
        img *= (0.85 + 0.15 * np.sin(yy * 0.9))[..., None]
    return img


def make_sample(rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """One (image uint8 (H, W, 3), label uint8 (H, W)) pair; later shapes occlude earlier ones."""
    h, w = int(rng.choice(HEIGHTS)), int(rng.choice(WIDTHS))
    grey = rng.uniform(90, 160)
    img = grey + rng.normal(0, 12, (h, w, 3)).astype(np.float32)
    label = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(2, 6))):
        cls = int(rng.integers(1, len(CLASSES) + 1))
        mask = _shape_mask(rng, h, w)
        img[mask] = _texture(rng, cls, h, w)[mask]
        label[mask] = cls
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), label


def write_split(out: str, split: str, num: int, rng: np.random.Generator, start: int) -> None:
    img_dir, ann_dir = osp.join(out, "images", split), osp.join(out, "annotations", split)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    for i in range(start, start + num):
        img, label = make_sample(rng)
        Image.fromarray(img).save(osp.join(img_dir, f"toy_{i:05d}.jpg"), quality=95)
        Image.fromarray(label).save(osp.join(ann_dir, f"toy_{i:05d}.png"))


def make_toy_ade(out: str = "data/toy_ade", seed: int = 0, num_train: int = 48, num_val: int = 12) -> str:
    """Write the set under ``out`` and return it. Same seed and counts -> same files."""
    if num_train < 1 or num_val < 1:
        raise ValueError(f"num_train and num_val must be >= 1, got {num_train}, {num_val}")
    rng = np.random.default_rng(seed)
    write_split(out, "training", num_train, rng, 0)
    write_split(out, "validation", num_val, rng, num_train)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Write a toy ADE20k-format segmentation set")
    parser.add_argument("--out", default="data/toy_ade", help="output root (the config's data_root)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-train", type=int, default=48)
    parser.add_argument("--num-val", type=int, default=12)
    args = parser.parse_args(argv)
    make_toy_ade(args.out, args.seed, args.num_train, args.num_val)
    print(f"wrote {args.num_train} training and {args.num_val} validation images to {args.out}")


if __name__ == "__main__":
    main()
