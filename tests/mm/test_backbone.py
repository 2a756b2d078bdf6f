"""The framework-neutral OpenMMLab backbone (vim_backbone.mm.backbone): arguments, taps, freezing."""
import pytest
import torch
import torch.nn as nn

pytest.importorskip("mmcv")

from vim_backbone.mm.backbone import VimBackbone  # noqa: E402

ARCH = dict(embed_dim=32, depth=4, d_state=4)


def test_taps_give_strides_4_8_16_32_for_any_size():
    bb = VimBackbone(arch=ARCH, img_size=64, out_indices=[0, 1, 2, 3], tap_scales=(4, 2, 1, 0.5)).eval()
    with torch.no_grad():
        outs = bb(torch.randn(2, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(2, 32, 16, 24), (2, 32, 8, 12), (2, 32, 4, 6), (2, 32, 2, 3)]


def test_out_types():
    x = torch.randn(1, 3, 48, 64)
    raw = VimBackbone(arch=ARCH, img_size=48, out_type="raw").eval()
    cls = VimBackbone(arch=ARCH, img_size=48, out_type="cls_token", with_cls_token=True).eval()
    with torch.no_grad():
        assert raw(x)[0].shape == (1, 12, 32)
        assert cls(x)[0].shape == (1, 32)


@pytest.mark.parametrize("kwargs", [dict(out_indices=[1, 3]), dict(out_indices=[1], out_type="featmap"),
                                    dict(out_indices=[3], out_type="raw")])
def test_every_trainable_parameter_gets_a_gradient(kwargs):
    # what DistributedDataParallel needs without find_unused_parameters: norm_f (features not normalised)
    # and the blocks after the last tapped one are kept for checkpoints but not trained
    bb = VimBackbone(arch=ARCH, img_size=32, **kwargs).train()
    sum(o.float().sum() for o in bb(torch.randn(2, 3, 32, 32))).backward()
    unused = [n for n, p in bb.named_parameters() if p.requires_grad and p.grad is None]
    assert not unused, unused
    assert bb.norm_f.weight.requires_grad == bb.final_norm
    assert set(bb.state_dict()) >= {"norm_f.weight", "layers.3.mixer.A_log"}


def test_scan_recompute_reaches_every_mixer():
    # the fused backend's lower-memory training is the default; a config's backbone=dict(..., scan_recompute=False)
    # turns it off
    assert all(layer.mixer.recompute for layer in VimBackbone(arch=ARCH).layers)
    assert not any(layer.mixer.recompute for layer in VimBackbone(arch=ARCH, scan_recompute=False).layers)


def test_frozen_stages_stay_frozen_after_train():
    bb = VimBackbone(arch=ARCH, img_size=32, frozen_stages=2, drop_path_rate=0.1, with_cls_token=True)
    bb.train()
    assert not bb.pos_embed.requires_grad and not bb.cls_token.requires_grad
    assert all(not p.requires_grad for p in bb.patch_embed.parameters())
    assert all(not p.requires_grad for layer in bb.layers[:2] for p in layer.parameters())
    assert all(p.requires_grad for layer in bb.layers[2:] for p in layer.parameters())
    assert not bb.layers[1].training and bb.layers[2].training


def test_norm_eval_keeps_batchnorm_in_eval_mode():
    bb = VimBackbone(arch=ARCH, img_size=32, out_indices=[0, 1, 2, 3], tap_scales=(4, 2, 1, 0.5),
                     norm_cfg=dict(type="BN"), norm_eval=True)
    bb.train()
    bns = [m for m in bb.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(not m.training for m in bns)


@pytest.mark.parametrize("kwargs,match", [
    (dict(arch="huge"), r"arch 'huge' not in \['base', 'small', 'tiny'\]"),
    (dict(arch=dict(embed_dim=32)), "must be a dict with keys"),
    (dict(arch=ARCH, out_type="tokens"), "out_type 'tokens' not in"),
    (dict(arch=ARCH, out_type="cls_token"), "needs with_cls_token=True"),
    (dict(arch=ARCH, out_indices=[4]), "out of range for depth 4"),
    (dict(arch=ARCH, out_indices=[1, 3], tap_scales=(4, 2, 1)), "one scale per"),
    (dict(arch=ARCH, out_indices=[3], tap_scales=(3,)), "tap scale 3.0 not in"),
])
def test_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VimBackbone(img_size=32, **kwargs)


def test_shrink_model_cfg_rejects_unknown_task():
    from mmengine.config import ConfigDict

    from vim_backbone.mm.runner_config import shrink_model_cfg
    with pytest.raises(ValueError, match=r"task 'cls' not in \('det', 'seg'\)"):
        shrink_model_cfg(ConfigDict(backbone=dict(type="VimBackbone")), "cls", ARCH, 16)
