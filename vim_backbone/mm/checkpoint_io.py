"""How the tools read checkpoint files: ``weights_only=True`` first, full unpickling only when trusted.

Weight files from users and official releases are plain tensors (plus an ``argparse.Namespace``) and load
with ``weights_only=True``. mmengine's own training checkpoints also pickle its message hub and numpy
objects, which ``weights_only`` refuses. Those are unpickled fully only when the file is *trusted*:

- it sits in a run directory written by ``tools/train.py`` (mmengine's ``last_checkpoint`` marker names
  a file in the same directory), or
- the user said so: ``--trust-checkpoint`` on the tools, or ``VIM_TRUST_CHECKPOINTS=1``.

Official Vim files (``{"model": state_dict}`` in the release layout) are converted on load to the
OpenMMLab layout (``backbone.*``, ``head.fc.*``) so ``tools/test.py ... --checkpoint official.pth`` works.
"""
import os
from typing import Any, Dict, Optional

import torch
from mmengine.runner.checkpoint import CheckpointLoader

from ..checkpoint import SAFE_GLOBALS, load_weights_file, unwrap_state_dict

TRUST_ENV = "VIM_TRUST_CHECKPOINTS"


def is_trusted(filename: str) -> bool:
    if os.environ.get(TRUST_ENV) == "1":
        return True
    marker = os.path.join(os.path.dirname(os.path.abspath(filename)), "last_checkpoint")
    if not os.path.isfile(marker):
        return False
    with open(marker) as f:
        last = f.read().strip()
    return os.path.dirname(os.path.abspath(last)) == os.path.dirname(os.path.abspath(filename))


def is_release_layout(sd: Dict[str, Any]) -> bool:
    return "patch_embed.proj.weight" in sd and "layers.0.mixer.in_proj.weight" in sd


def to_mm_layout(sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Release keys -> OpenMMLab model keys (``backbone.`` prefix, mmpretrain's ``head.fc.``)."""
    return {("head.fc." + k[len("head."):]) if k.startswith("head.") else "backbone." + k: v for k, v in sd.items()}


def load_checkpoint_file(filename: str, map_location: Optional[Any] = None) -> Dict[str, Any]:
    filename = os.path.expanduser(filename)
    try:
        ckpt = load_weights_file(filename)
    except ValueError:
        if not is_trusted(filename):
            raise ValueError(
                f"{filename!r} is not a plain weight file (torch.load(weights_only=True) refused it). If you "
                f"wrote it with tools/train.py, pass --trust-checkpoint (or set {TRUST_ENV}=1) to unpickle it fully; "
                "never do that for files from others.") from None
        ckpt = torch.load(filename, map_location="cpu", weights_only=False)
    if "state_dict" not in ckpt and "meta" not in ckpt:
        sd = unwrap_state_dict(ckpt)
        if is_release_layout(sd):
            ckpt = {"state_dict": to_mm_layout(sd), "meta": {"converted_from": "vim release layout"}}
    if map_location is not None and map_location != "cpu":
        ckpt = _to(ckpt, map_location)
    return ckpt


def _to(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    return obj


def install(trust: bool = False) -> None:
    """Route mmengine's local-file checkpoint loading through :func:`load_checkpoint_file`."""
    if trust:
        os.environ[TRUST_ENV] = "1"
    CheckpointLoader.register_scheme(prefixes="", force=True)(
        lambda filename, map_location=None: load_checkpoint_file(filename, map_location))


__all__ = ["SAFE_GLOBALS", "install", "is_trusted", "load_checkpoint_file", "to_mm_layout"]
