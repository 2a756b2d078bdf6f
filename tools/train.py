"""Train an mmdet / mmseg / mmpretrain model with a Vim backbone (OpenMMLab ``tools/train.py`` flags).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from vim_backbone.mm import checkpoint_io  # noqa: E402
from vim_backbone.mm.runner_config import load_config  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Train a model")
    parser.add_argument("config", help="train config file path")
    parser.add_argument("--work-dir", help="the dir to save logs and models")
    parser.add_argument("--resume", nargs="?", type=str, const="auto",
                        help="resume from CKPT, or from the latest checkpoint in the work dir when no path is given")
    parser.add_argument("--amp", action="store_true", help="mixed precision (bf16 where supported, else fp16 + loss scaling)")
    parser.add_argument("--auto-scale-lr", action="store_true", help="scale lr by the actual batch size")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow full unpickling of the resumed/loaded file (only for files you wrote)")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction,
                        help="override config settings, e.g. train_cfg.max_iters=100")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    return args


def enable_amp(cfg: Config) -> None:
    import torch
    wrapper = cfg.optim_wrapper.get("type", "OptimWrapper")
    if wrapper == "AmpOptimWrapper":
        return
    if wrapper != "OptimWrapper":
        raise ValueError(f"--amp needs optim_wrapper.type OptimWrapper or AmpOptimWrapper, got {wrapper}")
    cfg.optim_wrapper.type = "AmpOptimWrapper"
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        cfg.optim_wrapper.dtype = "bfloat16"  # no loss scaling needed, no fp16 overflow
    else:
        cfg.optim_wrapper.loss_scale = "dynamic"


def main(argv=None):
    args = parse_args(argv)
    checkpoint_io.install(trust=args.trust_checkpoint)
    cfg = load_config(args.config, args.launcher, args.cfg_options, args.work_dir)
    if args.amp:
        enable_amp(cfg)
    if args.auto_scale_lr:
        if "auto_scale_lr" not in cfg or "base_batch_size" not in cfg.auto_scale_lr:
            raise ValueError("--auto-scale-lr needs auto_scale_lr.base_batch_size in the config")
        cfg.auto_scale_lr.enable = True
    if args.resume == "auto":
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    runner = Runner.from_cfg(cfg) if "runner_type" not in cfg else RUNNERS.build(cfg)
    runner.train()


if __name__ == "__main__":
    main()
