"""Evaluate a checkpoint (OpenMMLab ``tools/test.py`` flags).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl] [--cfg-options ...]
    python tools/test.py CONFIG --checkpoint vim_t_midclstok_76p1acc.pth   # official file, as downloaded

Official Vim files (``{"model": ...}``) are converted on load; files written by tools/train.py are
recognised by their run directory (see ``vim_backbone.mm.checkpoint_io``).
"""
import argparse
import numbers
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from vim_backbone.mm import checkpoint_io  # noqa: E402
from vim_backbone.mm.runner_config import load_config  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Test (and evaluate) a model")
    parser.add_argument("config", help="test config file path")
    parser.add_argument("checkpoint", nargs="?", help="checkpoint file")
    parser.add_argument("--checkpoint", dest="checkpoint_opt", help="checkpoint file (same as the positional)")
    parser.add_argument("--work-dir", help="the dir to save logs and metrics")
    parser.add_argument("--out", help="dump predictions to a pickle file for offline evaluation")
    parser.add_argument("--show-dir", help="save visualised predictions under work_dir/timestamp/SHOW_DIR")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow full unpickling of the checkpoint (only for files you wrote)")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config settings")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    args.checkpoint = args.checkpoint or args.checkpoint_opt
    if not args.checkpoint:
        parser.error("a checkpoint is required (positional or --checkpoint)")
    return args


def main(argv=None):
    args = parse_args(argv)
    checkpoint_io.install(trust=args.trust_checkpoint)
    cfg = load_config(args.config, args.launcher, args.cfg_options, args.work_dir)
    cfg.load_from = args.checkpoint
    if args.show_dir:
        vis_hook = cfg.default_hooks.get("visualization")
        if vis_hook is None:
            raise ValueError("--show-dir needs default_hooks.visualization in the config")
        vis_hook.update(draw=True, show=False, test_out_dir=args.show_dir)
        if "enable" in vis_hook:
            vis_hook.enable = True
    if args.out:
        if not args.out.endswith((".pkl", ".pickle")):
            raise ValueError(f"--out must end with .pkl or .pickle, got {args.out!r}")
        cfg.test_evaluator = [cfg.test_evaluator] if isinstance(cfg.test_evaluator, dict) else list(cfg.test_evaluator)
        cfg.test_evaluator.append(dict(type="DumpResults", out_file_path=args.out))
    runner = Runner.from_cfg(cfg) if "runner_type" not in cfg else RUNNERS.build(cfg)
    metrics = runner.test()
    # metrics are often numpy scalars (mmseg's IoUMetric): print them as plain rounded floats
    print({k: (round(float(v), 4) if isinstance(v, numbers.Real) and not isinstance(v, numbers.Integral) else v)
           for k, v in metrics.items()})
    return metrics


if __name__ == "__main__":
    main()
