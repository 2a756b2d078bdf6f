"""Reading weight files safely (``weights_only=True``) with errors that say what is wrong."""
import argparse
import os
from typing import Any, Dict, Mapping

import torch

# Official Vim checkpoints are DeiT trainer files: {"model", "optimizer", ..., "args": argparse.Namespace}.
# Namespace is a plain attribute bag, so it is the one class allowed besides tensors and containers.
SAFE_GLOBALS = [argparse.Namespace]
STATE_DICT_KEYS = ("model", "state_dict", "model_ema", "module")


def load_weights_file(path: str) -> Dict[str, Any]:
    """``torch.load(path, weights_only=True)`` on CPU, with clear errors for missing or corrupt files."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint file {path!r} does not exist")
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(
            f"could not read checkpoint {path!r} ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). "
            "The file is truncated, corrupt, or holds objects other than weights; download it again. "
            "Full checkpoints written by this project's trainer are resumed with tools/train.py --resume."
        ) from e
    if not isinstance(obj, Mapping):
        raise ValueError(f"checkpoint {path!r} holds a {type(obj).__name__}, expected a dict of weights")
    return dict(obj)


def unwrap_state_dict(checkpoint: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
    """Return the state dict inside a checkpoint (``model`` / ``state_dict`` / ... or the dict itself)."""
    for key in STATE_DICT_KEYS:
        inner = checkpoint.get(key)
        if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
            checkpoint = inner
            break
    sd = {k: v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}
    if not sd:
        raise ValueError(f"no tensors found in checkpoint (top-level keys: {sorted(checkpoint)[:10]})")
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd
