"""Write a small COCO-format instance-segmentation set of coloured shapes, deterministically from a seed.

    python tools/make_toy_coco.py [--out data/toy_coco] [--num-train 128] [--num-val 32] [--size 128] [--seed 0]

Layout (what ``configs/det/*toy-coco*.py`` reads)::

    OUT/train/000000.png ...      OUT/val/000000.png ...
    OUT/annotations/train.json    OUT/annotations/val.json

Three classes: rectangle (axis-aligned or rotated), ellipse (a 32-gon), triangle. Each class has its own
hue family (red / green / blue, jittered by +-35 degrees, random saturation and brightness) on a greyish
background, so a detector trained from scratch for a few hundred CPU iterations has something to learn;
telling shapes apart is still needed where hues come close. Each image holds 1-3 shapes that do not
overlap, so every polygon is exactly the visible mask; the polygon drawn is the polygon annotated.
"""
import argparse
import colorsys
import json
import math
import os
import os.path as osp
import random
import time
from typing import Dict, List, Optional, Sequence, Tuple

from PIL import Image, ImageDraw

CLASSES = ("rectangle", "ellipse", "triangle")
CLASS_HUES = (0.0, 1 / 3, 2 / 3)  # red, green, blue families
Polygon = List[Tuple[float, float]]


def _rotate(points: Polygon, cx: float, cy: float, angle: float) -> Polygon:
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + (x - cx) * c - (y - cy) * s, cy + (x - cx) * s + (y - cy) * c) for x, y in points]


def make_shape(kind: str, cx: float, cy: float, r: float, rng: random.Random) -> Polygon:
    """Polygon of a shape of class ``kind`` centred at (cx, cy) with circumradius about ``r``."""
    if kind == "rectangle":
        w, h = r * rng.uniform(0.7, 1.0), r * rng.uniform(0.5, 1.0)
        pts = [(cx - w, cy - h), (cx + w, cy - h), (cx + w, cy + h), (cx - w, cy + h)]
        return _rotate(pts, cx, cy, rng.choice([0.0, rng.uniform(-0.5, 0.5)]))
    if kind == "ellipse":
        a, b = r * rng.uniform(0.6, 1.0), r * rng.uniform(0.6, 1.0)
        pts = [(cx + a * math.cos(2 * math.pi * k / 32), cy + b * math.sin(2 * math.pi * k / 32)) for k in range(32)]
        return _rotate(pts, cx, cy, rng.uniform(0, math.pi))
    if kind == "triangle":
        start = rng.uniform(0, 2 * math.pi)
        return [(cx + r * math.cos(start + 2 * math.pi * k / 3), cy + r * math.sin(start + 2 * math.pi * k / 3))
                for k in range(3)]
    raise ValueError(f"shape {kind!r} not in {CLASSES}")


def _bbox(poly: Polygon) -> Tuple[float, float, float, float]:
    xs, ys = [p[0] for p in poly], [p[1] for p in poly]
    return min(xs), min(ys), max(xs), max(ys)


def _overlaps(a, b, margin: float = 2.0) -> bool:
    return not (a[2] + margin < b[0] or b[2] + margin < a[0] or a[3] + margin < b[1] or b[3] + margin < a[1])


def _area(poly: Polygon) -> float:
    return abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(poly, poly[1:] + poly[:1]))) / 2


def _colour(kind: str, rng: random.Random) -> Tuple[int, int, int]:
    hue = (CLASS_HUES[CLASSES.index(kind)] + rng.uniform(-35, 35) / 360) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, rng.uniform(0.55, 1.0), rng.uniform(0.55, 1.0))
    return int(r * 255), int(g * 255), int(b * 255)


def make_image(size: int, rng: random.Random, max_shapes: int = 3) -> Tuple[Image.Image, List[Dict]]:
    grey = rng.randint(40, 215)
    bg = tuple(min(255, max(0, grey + rng.randint(-15, 15))) for _ in range(3))
    img = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(img)
    objs, boxes = [], []
    for _ in range(rng.randint(1, max_shapes)):
        for _attempt in range(20):
            kind = rng.choice(CLASSES)
            r = rng.uniform(0.12, 0.28) * size
            cx, cy = rng.uniform(r, size - r), rng.uniform(r, size - r)
            poly = [(min(max(x, 0.0), size - 1.0), min(max(y, 0.0), size - 1.0)) for x, y in make_shape(kind, cx, cy, r, rng)]
            box = _bbox(poly)
            if not any(_overlaps(box, b) for b in boxes):
                break
        else:
            continue
        boxes.append(box)
        draw.polygon(poly, fill=_colour(kind, rng))
        objs.append(dict(kind=kind, poly=poly, box=box))
    return img, objs


def write_split(out_dir: str, split: str, num_images: int, size: int, rng: random.Random) -> str:
    img_dir = osp.join(out_dir, split)
    os.makedirs(img_dir, exist_ok=True)
    images, annotations = [], []
    for i in range(num_images):
        img, objs = make_image(size, rng)
        name = f"{i:06d}.png"
        img.save(osp.join(img_dir, name))
        images.append(dict(id=i, file_name=name, width=size, height=size))
        for obj in objs:
            x0, y0, x1, y1 = obj["box"]
            annotations.append(dict(
                id=len(annotations) + 1, image_id=i, category_id=CLASSES.index(obj["kind"]) + 1,
                bbox=[round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                area=round(_area(obj["poly"]), 2), iscrowd=0,
                segmentation=[[round(v, 2) for p in obj["poly"] for v in p]]))
    coco = dict(images=images, annotations=annotations,
                categories=[dict(id=k + 1, name=n, supercategory="shape") for k, n in enumerate(CLASSES)])
    ann_file = osp.join(out_dir, "annotations", f"{split}.json")
    os.makedirs(osp.dirname(ann_file), exist_ok=True)
    with open(ann_file, "w") as f:
        json.dump(coco, f)
    return ann_file


def make_toy_coco(out_dir: str = "data/toy_coco", num_train: int = 128, num_val: int = 32, size: int = 128,
                  seed: int = 0) -> Dict[str, str]:
    """Write the toy set; the same arguments give byte-identical annotation files. Returns the json paths."""
    if size < 64:
        raise ValueError(f"size={size} too small: shapes need at least 64 px images")
    rng = random.Random(seed)
    return {split: write_split(out_dir, split, n, size, rng) for split, n in (("train", num_train), ("val", num_val))}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data/toy_coco", help="output directory. Defaults to data/toy_coco")
    parser.add_argument("--num-train", type=int, default=128)
    parser.add_argument("--num-val", type=int, default=32)
    parser.add_argument("--size", type=int, default=128, help="square image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, str]:
    args = parse_args(argv)
    t0 = time.perf_counter()
    files = make_toy_coco(args.out, args.num_train, args.num_val, args.size, args.seed)
    print(f"toy COCO written to {args.out} ({args.num_train} train / {args.num_val} val images, "
          f"{args.size}px, classes {CLASSES}) in {time.perf_counter() - t0:.1f}s")
    return files


if __name__ == "__main__":
    main()
