"""Bytes a training forward keeps for its backward, per image: what sets a training step's peak memory.

Counts the distinct storages autograd saves (``torch.autograd.graph.saved_tensors_hooks``) in one training forward
at batch 1 and at batch 2; their difference is the activations of one image, the rest (weights, their autocast
copies) does not grow with the batch. The count depends on the model and its settings, not on the device: on a
CPU, ``--stub-kernels`` replaces the fused backend's Triton kernels by launches that do nothing (the tensors they
would fill are allocated and saved as usual; their values are not computed, and not needed for a count).

    python3 tools/activation_memory.py --img-size 1024                          # Vim-Ti, fused, bf16 autocast (CUDA)
    python3 tools/activation_memory.py --img-size 1024 --device cpu --stub-kernels --no-scan-recompute
    python3 tools/activation_memory.py --img-size 1024 --device cpu --stub-kernels --with-cp
    python3 tools/activation_memory.py --model deit_tiny --img-size 1024 --device cpu
"""
import argparse
import contextlib
import json
import os
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

MODELS = {"vim_tiny": "vim_tiny_patch16_224", "vim_small": "vim_small_patch16_224",
          "deit_tiny": "deit_tiny_patch16_224", "deit_small": "deit_small_patch16_224"}
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def saved_bytes(model: torch.nn.Module, x: torch.Tensor, amp_dtype) -> int:
    """Bytes of the distinct storages autograd keeps for the backward of ``model(x)``'s training forward."""
    storages = {}

    def pack(t):
        storage = t.untyped_storage()
        storages[(storage.device, storage.data_ptr())] = storage.nbytes()
        return t

    amp = (torch.autocast(x.device.type, dtype=amp_dtype) if amp_dtype is not None else contextlib.nullcontext())
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), amp:
        out = model(x)
    del out
    return sum(storages.values())


@contextlib.contextmanager
def stubbed_kernels():
    """The fused ops' Triton kernels launch nothing (their outputs keep what ``torch.empty`` gave them), and each
    block's add + RMSNorm takes its Triton op as on CUDA (it saves other tensors than the PyTorch expression)."""
    interpret = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"  # the fused backend on a CPU (fused_available)
    from vim_backbone.layers import norm
    from vim_backbone.ops.fused_bimamba import load_fused_kernels

    class Stub:
        def __getitem__(self, grid):
            return lambda *args, **kwargs: None

    kernels = load_fused_kernels()
    names = [n for n in dir(kernels) if type(getattr(kernels, n)).__name__ in ("JITFunction", "InterpretedFunction")]
    saved = {n: getattr(kernels, n) for n in names}
    norm_enabled = norm._fused_add_norm_enabled
    try:
        for n in names:
            setattr(kernels, n, Stub())
        norm._fused_add_norm_enabled = lambda x: True
        yield len(names)
    finally:
        for n, k in saved.items():
            setattr(kernels, n, k)
        norm._fused_add_norm_enabled = norm_enabled
        if interpret is None:
            os.environ.pop("TRITON_INTERPRET")
        else:
            os.environ["TRITON_INTERPRET"] = interpret


def build(name: str, img_size: int, backend: str, scan_recompute: bool, with_cp: bool = False) -> torch.nn.Module:
    if name.startswith("vim"):
        from vim_backbone import create_model
        return create_model(MODELS[name], num_classes=0, img_size=img_size, scan_backend=backend,
                            scan_recompute=scan_recompute, with_cp=with_cp)
    import timm
    return timm.create_model(MODELS[name], pretrained=False, num_classes=0, img_size=img_size)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="vim_tiny", choices=sorted(MODELS))
    p.add_argument("--img-size", type=int, default=1024)
    p.add_argument("--backend", default="fused", help="Vim scan backend (default fused)")
    p.add_argument("--scan-recompute", action=argparse.BooleanOptionalAction, default=None,
                   help="Vim with scan_recompute (the default), or --no-scan-recompute without")
    p.add_argument("--with-cp", action="store_true", help="Vim with gradient checkpointing per block (with_cp=True)")
    p.add_argument("--dtype", default="bf16", choices=sorted(DTYPES), help="autocast dtype (fp32: none)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--stub-kernels", action="store_true",
                   help="the fused backend's Triton kernels launch nothing (counts on a CPU)")
    p.add_argument("--out", help="write the result as JSON here")
    args = p.parse_args(argv)
    vim = args.model.startswith("vim")
    if (args.stub_kernels or args.with_cp or args.scan_recompute is not None) and not vim:
        raise SystemExit("--stub-kernels, --[no-]scan-recompute and --with-cp concern Vim only")
    if vim and args.scan_recompute is None:
        args.scan_recompute = True  # the model's default
    device = torch.device(args.device)
    with stubbed_kernels() if args.stub_kernels else contextlib.nullcontext():
        torch.manual_seed(0)
        model = build(args.model, args.img_size, args.backend, args.scan_recompute, args.with_cp).to(device).train()
        counts = [saved_bytes(model, torch.randn(b, 3, args.img_size, args.img_size, device=device),
                              DTYPES[args.dtype]) for b in (1, 2)]
    per_image = counts[1] - counts[0]
    result = dict(model=args.model, img_size=args.img_size, backend=args.backend if vim else "timm default (SDPA)",
                  scan_recompute=args.scan_recompute, with_cp=args.with_cp, dtype=args.dtype, device=str(device),
                  stub_kernels=args.stub_kernels,
                  bytes_batch1=counts[0], bytes_batch2=counts[1], per_image_bytes=per_image,
                  per_image_gb=round(per_image / 1e9, 4), fixed_gb=round((counts[0] - per_image) / 1e9, 4))
    print(json.dumps(result))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
