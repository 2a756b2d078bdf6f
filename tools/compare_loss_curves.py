"""Compare training-loss curves of mmengine runs (e.g. one GPU vs DDP with the same global batch).

    python tools/compare_loss_curves.py ref=work_dirs/a seed1=work_dirs/b ddp2=work_dirs/c [--key loss]
        [--window 25] [--out compare.json]

Each run is ``label=path``: a work dir (its newest ``*/vis_data/scalars.json`` is read) or a
``scalars.json``; the first run is the reference. Log every iteration for a fair comparison
(``default_hooks.logger.interval=1 log_processor.window_size=1``). Per window of ``--window`` logged
steps it prints each run's mean loss and, against the reference, the difference in units of its
standard error (``z``: |mean_run - mean_ref| / sqrt(se_run^2 + se_ref^2)); the summary row gives each
run's mean |z| and the whole-curve mean difference. A DDP run matches one GPU "within noise" when its
z values are of the size a second seed gives.
"""
import argparse
import glob
import json
import math
import os
import sys
from typing import Dict, List, Tuple


def find_scalars(path: str) -> str:
    if os.path.isfile(path):
        return path
    found = sorted(glob.glob(os.path.join(path, "*", "vis_data", "scalars.json")) +
                   glob.glob(os.path.join(path, "vis_data", "scalars.json")), key=os.path.getmtime)
    if not found:
        raise FileNotFoundError(f"no vis_data/scalars.json under {path}")
    return found[-1]


def read_curve(path: str, key: str) -> Dict[int, float]:
    curve = {}
    with open(find_scalars(path)) as f:
        for line in f:
            rec = json.loads(line)
            if key in rec and "step" in rec:
                curve[int(rec["step"])] = float(rec[key])
    if not curve:
        raise ValueError(f"{path}: no '{key}' values")
    return curve


def mean_se(values: List[float]) -> Tuple[float, float]:
    n = len(values)
    m = sum(values) / n
    var = sum((v - m) ** 2 for v in values) / max(n - 1, 1)
    return m, math.sqrt(var / n)


def compare(curves: Dict[str, Dict[int, float]], window: int) -> dict:
    labels = list(curves)
    steps = sorted(set.intersection(*(set(c) for c in curves.values())))
    if not steps:
        raise ValueError("the runs share no logged step")
    windows = []
    for i in range(0, len(steps), window):
        chunk = steps[i:i + window]
        stats = {k: mean_se([curves[k][s] for s in chunk]) for k in labels}
        ref_m, ref_se = stats[labels[0]]
        row = dict(first_step=chunk[0], last_step=chunk[-1], mean={k: stats[k][0] for k in labels}, z={})
        for k in labels[1:]:
            m, se = stats[k]
            row["z"][k] = abs(m - ref_m) / max(math.hypot(se, ref_se), 1e-12)
        windows.append(row)
    summary = {}
    for k in labels[1:]:
        zs = [w["z"][k] for w in windows]
        diffs = [curves[k][s] - curves[labels[0]][s] for s in steps]
        summary[k] = dict(mean_abs_z=sum(zs) / len(zs), max_z=max(zs), mean_diff=sum(diffs) / len(diffs),
                          final_window_mean=windows[-1]["mean"][k])
    return dict(reference=labels[0], steps=len(steps), window=window, windows=windows, summary=summary)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="label=path (work dir or scalars.json); the first is the reference")
    p.add_argument("--key", default="loss")
    p.add_argument("--window", type=int, default=25)
    p.add_argument("--out")
    args = p.parse_args(argv)
    runs = dict(r.split("=", 1) if "=" in r else (os.path.basename(r.rstrip("/")), r) for r in args.runs)
    if len(runs) < 2:
        p.error("need at least two runs")
    result = compare({k: read_curve(v, args.key) for k, v in runs.items()}, args.window)
    labels = list(runs)
    print("| steps | " + " | ".join(labels) + " | " + " | ".join(f"z {k}" for k in labels[1:]) + " |")
    print("|---" * (2 * len(labels)) + "|")
    for w in result["windows"]:
        print(f"| {w['first_step']}-{w['last_step']} | " + " | ".join(f"{w['mean'][k]:.4f}" for k in labels) +
              " | " + " | ".join(f"{w['z'][k]:.2f}" for k in labels[1:]) + " |")
    for k, s in result["summary"].items():
        print(f"{k} vs {labels[0]}: mean |z| {s['mean_abs_z']:.2f}, max z {s['max_z']:.2f}, "
              f"mean loss difference {s['mean_diff']:+.4f} over {result['steps']} steps")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
