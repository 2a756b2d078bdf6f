"""The fused ops run on their inputs' GPU, also when another one is current (Triton launches on the current
device): the guard's rule on CPU, the ops on a second GPU."""
import copy

import pytest
import torch

from vim_backbone.layers.mixer import BiMambaMixer


class _OnGPU:
    """Stands in for a CUDA tensor: ``on_device_of`` reads only ``is_cuda`` and ``device``."""

    def __init__(self, index):
        self.is_cuda, self.device = True, torch.device("cuda", index)


def test_on_device_of_switches_only_to_another_gpu(monkeypatch):
    from vim_backbone.ops import fused_bimamba as fb
    entered = []

    class _Guard:
        def __init__(self, device):
            self.device = device

        def __enter__(self):
            entered.append(self.device)

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "device", _Guard)
    for t in (torch.zeros(1), _OnGPU(0)):  # CPU, or the current GPU: nothing to switch
        with fb.on_device_of(t):
            pass
    assert entered == []
    with fb.on_device_of(_OnGPU(1)):
        pass
    assert entered == [torch.device("cuda", 1)]


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_fused_ops_on_a_device_that_is_not_current_gpu():
    # Triton launches on the current device: the fused ops' entries switch to their inputs' GPU
    from vim_backbone.ops.fused_norm import add_rmsnorm
    torch.manual_seed(0)
    mixer = BiMambaMixer(64, d_state=16, backend="fused").to("cuda:1")
    x = torch.randn(2, 100, 64, device="cuda:1")
    torch.cuda.set_device(0)
    ref = copy.deepcopy(mixer).to("cuda:0")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        with torch.no_grad():  # fused_mixer_inference
            want, got = ref(x.to("cuda:0")), mixer(x)
        assert torch.equal(got.to("cuda:0"), want)
        x.requires_grad_(True)
        out = mixer(x)  # scan_fused_prepared under autograd, and its backward
        out.float().square().mean().backward()
    assert out.device == x.device and x.grad.device == x.device and torch.isfinite(x.grad).all()
    y, res = add_rmsnorm(x.detach(), x.detach().float(), torch.ones(64, device="cuda:1"), 1e-5)
    assert y.device == res.device == x.device
    assert torch.cuda.current_device() == 0
