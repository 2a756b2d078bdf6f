"""Write a small ImageNet-style folder dataset of synthetic images (for the toy config and the tests).

    python tools/make_toy_imagenet.py data/toy_imagenet [--classes 4] [--train-per-class 64]
        [--val-per-class 16] [--size 32] [--seed 0]

Layout (what mmpretrain's ``ImageNet`` / ``CustomDataset`` read)::

    OUT/train/<class>/<class>_00000.png
    OUT/val/<class>/<class>_00000.png
    OUT/meta/{train,val}.txt     # "<class>/<file> <label>" lines: ImageNet(ann_file='meta/val.txt') reads
                                 # them with the 1000 ImageNet class names (the in1k configs, unchanged)

Each class is one shape drawn in one hue family on a noisy background (disc, square, triangle, ring,
cross, horizontal stripes, vertical stripes, checkerboard). Position, scale, brightness and background
vary per image, so a model has to look at the foreground, yet a tiny Vim learns it in a few hundred
CPU iterations. Output is a pure function of the arguments (numpy ``default_rng(seed)``).
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Sequence

import numpy as np
from PIL import Image

SHAPES = ("disc", "square", "triangle", "ring", "cross", "hstripes", "vstripes", "checker")
# one hue per class (RGB), spread around the colour wheel
HUES = ((220, 60, 50), (60, 170, 60), (50, 90, 220), (230, 200, 40),
        (170, 60, 200), (40, 190, 200), (240, 130, 30), (200, 200, 200))


def _shape_mask(shape: str, size: int, cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    dy, dx = yy - cy, xx - cx
    box = (np.abs(dy) <= r) & (np.abs(dx) <= r)
    period = max(2.0, r / 2)
    if shape == "disc":
        return dy ** 2 + dx ** 2 <= r ** 2
    if shape == "square":
        return box
    if shape == "triangle":
        return (dy <= r) & (dy >= -r) & (np.abs(dx) <= (dy + r) / 2)
    if shape == "ring":
        d2 = dy ** 2 + dx ** 2
        return (d2 <= r ** 2) & (d2 >= (0.55 * r) ** 2)
    if shape == "cross":
        w = 0.35 * r
        return box & ((np.abs(dy) <= w) | (np.abs(dx) <= w))
    if shape == "hstripes":
        return box & (np.floor(dy / period) % 2 == 0)
    if shape == "vstripes":
        return box & (np.floor(dx / period) % 2 == 0)
    if shape == "checker":
        return box & ((np.floor(dy / period) + np.floor(dx / period)) % 2 == 0)
    raise ValueError(f"shape {shape!r} not in {SHAPES}")


def make_image(class_idx: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One (size, size, 3) uint8 image of class ``class_idx``."""
    background = rng.uniform(20, 110, size=3)
    img = background + rng.normal(0, 12, size=(size, size, 3))
    r = rng.uniform(0.22, 0.38) * size
    cy, cx = rng.uniform(r, size - r, size=2)
    mask = _shape_mask(SHAPES[class_idx], size, cy, cx, r)
    colour = np.asarray(HUES[class_idx], dtype=np.float32) * rng.uniform(0.75, 1.1) + rng.normal(0, 10, size=3)
    img[mask] = colour + rng.normal(0, 8, size=(int(mask.sum()), 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def class_names(num_classes: int) -> List[str]:
    return [f"{i:02d}_{SHAPES[i]}" for i in range(num_classes)]


def make_toy_imagenet(out_dir: str, num_classes: int = 4, train_per_class: int = 64, val_per_class: int = 16,
                      size: int = 32, seed: int = 0) -> List[str]:
    """Write the dataset under ``out_dir``; returns the class names (folder names, sorted = label order)."""
    if not 2 <= num_classes <= len(SHAPES):
        raise ValueError(f"num_classes={num_classes} must be in 2..{len(SHAPES)} (one shape per class: {SHAPES})")
    if size < 16:
        raise ValueError(f"size={size} must be >= 16 pixels")
    names = class_names(num_classes)
    for split, per_class, split_seed in (("train", train_per_class, seed), ("val", val_per_class, seed + 10_000)):
        if per_class <= 0:
            continue
        rng = np.random.default_rng(split_seed)
        lines = []
        for idx, name in enumerate(names):
            folder = osp.join(out_dir, split, name)
            os.makedirs(folder, exist_ok=True)
            for j in range(per_class):
                Image.fromarray(make_image(idx, size, rng)).save(osp.join(folder, f"{name}_{j:05d}.png"))
                lines.append(f"{name}/{name}_{j:05d}.png {idx}")
        os.makedirs(osp.join(out_dir, "meta"), exist_ok=True)
        with open(osp.join(out_dir, "meta", f"{split}.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")
    return names


def main(argv: Sequence[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", nargs="?", default="data/toy_imagenet")
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--train-per-class", type=int, default=64)
    parser.add_argument("--val-per-class", type=int, default=16)
    parser.add_argument("--size", type=int, default=32, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    names = make_toy_imagenet(args.out_dir, args.classes, args.train_per_class, args.val_per_class, args.size, args.seed)
    print(f"wrote {args.out_dir}: classes {names}, {args.train_per_class}/{args.val_per_class} train/val images "
          f"per class at {args.size}x{args.size}")


if __name__ == "__main__":
    main(sys.argv[1:])
