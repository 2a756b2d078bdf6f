"""Quickstart (README command 1): train a Vim detector on a generated COCO set and look at its output, on CPU.

    python tools/quickstart.py [--iters 400] [--data data/toy_coco] [--work-dir work_dirs/quickstart_det]

1. writes the toy COCO instance-segmentation set (tools/make_toy_coco.py) unless it is there;
   scores the untrained (freshly initialised) detector on it, for comparison;
2. trains ``configs/det/mask-rcnn_vim-t-tiny_toy-coco.py`` with tools/train.py;
3. evaluates the checkpoint with tools/test.py (CocoMetric: bbox and segm mAP);
4. draws the trained model's boxes and masks on a validation image with mmdet's ``DetLocalVisualizer``
   and prints the PNG's path.
"""
import argparse
import importlib.util
import os
import os.path as osp
import sys
import time
from typing import List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
CONFIG = osp.join(ROOT, "configs", "det", "mask-rcnn_vim-t-tiny_toy-coco.py")


def load_tool(name: str):
    """``tools/<name>.py`` as a module (tools/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"_quickstart_{name}", osp.join(ROOT, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def data_options(data_root: str) -> List[str]:
    """``--cfg-options`` pointing the toy config at ``data_root``."""
    data_root = data_root.rstrip("/") + "/"
    return [f"{k}.dataset.data_root={data_root}" for k in ("train_dataloader", "val_dataloader", "test_dataloader")] + \
        [f"{k}.ann_file={data_root}annotations/val.json" for k in ("val_evaluator", "test_evaluator")]


def save_untrained(config: str, out_file: str, seed: int = 0) -> str:
    """The toy detector as initialised (seeded), saved as a plain weight file: the "before training" baseline."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmdet.registry import MODELS

    cfg = Config.fromfile(config)
    init_default_scope("mmdet")
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    torch.save({"state_dict": model.state_dict(), "meta": {"note": "untrained, seed %d" % seed}}, out_file)
    return out_file


def draw_predictions(config: str, checkpoint: str, image: str, out_file: str, score_thr: float = 0.5) -> int:
    """Run the trained detector on ``image`` and save its boxes and masks drawn by mmdet. Returns #drawn."""
    import mmcv
    from mmdet.apis import inference_detector, init_detector
    from mmdet.registry import VISUALIZERS

    model = init_detector(config, checkpoint, device="cpu")
    result = inference_detector(model, image)
    visualizer = VISUALIZERS.build(dict(type="DetLocalVisualizer", name="vim_quickstart"))
    visualizer.dataset_meta = model.dataset_meta
    visualizer.add_datasample("prediction", mmcv.imread(image, channel_order="rgb"), data_sample=result,
                              draw_gt=False, show=False, out_file=out_file, pred_score_thr=score_thr)
    return int((result.pred_instances.scores >= score_thr).sum())


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Toy COCO -> train a Vim Mask R-CNN -> COCO mAP -> a picture (CPU)")
    parser.add_argument("--data", default=osp.join(ROOT, "data", "toy_coco"), help="toy set directory (made if absent)")
    parser.add_argument("--work-dir", default=osp.join(ROOT, "work_dirs", "quickstart_det"))
    parser.add_argument("--iters", type=int, default=400, help="training iterations (batch 4). Defaults to 400")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads. Defaults to 1: on a busy 2-core machine two oversubscribed OpenMP "
                             "threads made a step ~10x slower than one")
    parser.add_argument("--image", type=int, default=0, help="index of the validation image to draw")
    parser.add_argument("--score-thr", type=float, default=0.3, help="draw predictions scoring at least this")
    args = parser.parse_args(argv)
    if args.iters < 4:
        parser.error(f"--iters {args.iters}: need at least 4 (warm-up, then cosine decay)")
    return args


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    t0 = time.perf_counter()
    import torch
    torch.set_num_threads(args.threads)

    ann = osp.join(args.data, "annotations", "train.json")
    if not osp.isfile(ann):
        load_tool("make_toy_coco").main(["--out", args.data])
    os.makedirs(args.work_dir, exist_ok=True)
    # the same evaluation before training: what the scores below are to be compared with
    untrained = save_untrained(CONFIG, osp.join(args.work_dir, "untrained.pth"))
    before = load_tool("test").main([CONFIG, untrained, "--work-dir", osp.join(args.work_dir, "test_untrained"),
                                     "--cfg-options", *data_options(args.data)])

    # NOTE: param_scheduler.0 is the linear warm-up, .1 the cosine decay; their bounds were fixed from
    # max_iters when the config was read, so a short run must move them (warm-up at most a quarter)
    warmup = min(50, max(1, args.iters // 4))
    options = data_options(args.data) + [f"train_cfg.max_iters={args.iters}", f"train_cfg.val_interval={args.iters}",
                                         f"default_hooks.checkpoint.interval={args.iters}",
                                         f"param_scheduler.0.end={warmup}", f"param_scheduler.1.begin={warmup}",
                                         f"param_scheduler.1.end={args.iters}"]
    t_train = time.perf_counter()
    load_tool("train").main([CONFIG, "--work-dir", args.work_dir, "--cfg-options", *options])
    t_train = time.perf_counter() - t_train
    checkpoint = osp.join(args.work_dir, f"iter_{args.iters}.pth")

    metrics = load_tool("test").main([CONFIG, checkpoint, "--work-dir", osp.join(args.work_dir, "test"),
                                      "--cfg-options", *options])

    val_dir = osp.join(args.data, "val")
    image = osp.join(val_dir, sorted(os.listdir(val_dir))[args.image])
    out_file = osp.abspath(osp.join(args.work_dir, "prediction.png"))
    drawn = draw_predictions(CONFIG, checkpoint, image, out_file, args.score_thr)

    # NOTE: CocoMetric returns no keys when the model detects nothing at all; that is an mAP of 0
    keys = ("bbox_mAP", "bbox_mAP_50", "segm_mAP", "segm_mAP_50")
    summary = {k: metrics.get("coco/" + k, 0.0) for k in keys}
    print("\n=== Vim detection quickstart ===")
    print(f"trained {args.iters} iterations in {t_train:.0f}s ({t_train / args.iters:.2f} s/iter incl. "
          f"the final validation), checkpoint {checkpoint}")
    print("COCO val: " + "  ".join(f"{k} {v:.3f}" for k, v in summary.items()))
    print("untrained: " + "  ".join(f"{k} {before.get('coco/' + k, 0.0):.3f}" for k in summary))
    print(f"{drawn} predictions (score >= {args.score_thr}) drawn on {image}: {out_file}")
    print(f"total time {time.perf_counter() - t0:.0f}s")
    return dict(summary, png=out_file, checkpoint=checkpoint,
                untrained={k: before.get("coco/" + k, 0.0) for k in summary})


if __name__ == "__main__":
    main()
