"""mmseg 1.x front-end: every seg config builds and steps, the toy run trains and evaluates, layer decay,
official checkpoints through ``init_cfg``. CPU, tiny archs."""
import argparse
import copy
import glob
import os.path as osp

import pytest
import torch

pytest.importorskip("mmseg")
pytest.importorskip("mmcv.ops", reason="mmcv built with ops is needed by mmseg's heads")

from mmengine.config import Config  # noqa: E402
from mmengine.model import revert_sync_batchnorm  # noqa: E402
from mmengine.optim import build_optim_wrapper  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.structures import PixelData  # noqa: E402

import vim_backbone.mm.seg  # noqa: E402,F401  (registers VimBackbone in mmseg)
from mmseg.registry import MODELS  # noqa: E402
from mmseg.structures import SegDataSample  # noqa: E402
from vim_backbone import VisionMamba, load_pretrained  # noqa: E402
from vim_backbone.layers import resize_pos_embed  # noqa: E402
from vim_backbone.mm.backbone import VimBackbone  # noqa: E402
from tests.helpers import load_tool  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(ROOT, "configs", "seg")
SEG_CONFIGS = sorted(glob.glob(osp.join(CONFIG_DIR, "*.py")))
TOY_CONFIG = osp.join(CONFIG_DIR, "upernet_vim-tiny_toy-ade-128x128.py")
TINY_ARCH = dict(embed_dim=32, depth=4, d_state=4)
TINY_CROP = (64, 64)


@pytest.fixture(autouse=True)
def _mmseg_scope():
    init_default_scope("mmseg")


def official_checkpoint(path: str, img_size=48, arch=TINY_ARCH) -> VisionMamba:
    """Write a file shaped like an official release (``{'model': sd, 'args': Namespace}``, mid cls token)."""
    core = VisionMamba(img_size=img_size, num_classes=10, class_token=True, **arch)
    torch.save({"model": core.state_dict(), "args": argparse.Namespace(model="vim_tiny_test")}, path)
    return core


def shrink(cfg: Config, checkpoint: str = None) -> Config:
    """Tiny backbone, small crops and heads; the config's structure (heads, taps, test mode, optim) kept."""
    cfg = copy.deepcopy(cfg)
    bb = cfg.model.backbone
    bb.arch = dict(TINY_ARCH)
    bb.img_size = TINY_CROP
    bb.out_indices = [0, 1, 2, 3][-len(bb.out_indices):]
    if bb.get("init_cfg") is not None:
        bb.init_cfg = dict(type="Pretrained", checkpoint=checkpoint) if checkpoint else None
    dim = TINY_ARCH["embed_dim"]
    for key in ("decode_head", "auxiliary_head"):
        head = cfg.model.get(key)
        if head is None:
            continue
        head.in_channels = [dim] * len(head.in_channels) if isinstance(head.in_channels, (list, tuple)) else dim
        head.channels = 16
    cfg.model.data_preprocessor.size = TINY_CROP
    if cfg.model.test_cfg.get("mode") == "slide":
        cfg.model.test_cfg.crop_size = TINY_CROP
        cfg.model.test_cfg.stride = (43, 43)
    return cfg


def seg_batch(sizes, num_classes: int, with_gt: bool = True):
    inputs, samples = [], []
    for h, w in sizes:
        inputs.append(torch.randint(0, 256, (3, h, w), dtype=torch.uint8))
        sample = SegDataSample()
        sample.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
        if with_gt:
            label = torch.randint(0, num_classes, (1, h, w))
            label[:, :4] = 255  # some ignored pixels
            sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def test_seg_configs_found():
    names = {osp.basename(p) for p in SEG_CONFIGS}
    assert {"upernet_vim-t_8xb2-160k_ade20k-512x512.py", "upernet_vim-s_8xb2-160k_ade20k-512x512.py",
            "upernet_vim-tiny_toy-ade-128x128.py"} <= names
    assert any(not n.startswith("upernet") for n in names), "a config with another decode head (backbone swap)"


@pytest.mark.parametrize("config", SEG_CONFIGS, ids=osp.basename)
def test_config_builds_and_steps(config, tmp_path):
    cfg = Config.fromfile(config)
    assert cfg.custom_imports["imports"] == ["vim_backbone.mm.seg"]
    bb = cfg.model.backbone
    assert bb.type == "VimBackbone" and bb.with_cls_token is False and bb.tap_scales == (4, 2, 1, 0.5)
    assert cfg.optim_wrapper.constructor == "VimLayerDecayOptimWrapperConstructor"
    assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == 0.92

    ckpt = str(tmp_path / "vim_tiny_official.pth")
    core = official_checkpoint(ckpt)
    cfg = shrink(cfg, ckpt)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))  # as mmengine does when not distributed
    model.init_weights()
    if bb.get("init_cfg") is not None:  # the config's Pretrained path really loaded the official file
        torch.testing.assert_close(model.backbone.layers[1].mixer.A_b_log, core.layers[1].mixer.A_b_log)
    num_classes = model.decode_head.num_classes

    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    before = model.backbone.layers[0].mixer.in_proj.weight.detach().clone()
    model.train()
    log_vars = model.train_step(seg_batch([TINY_CROP, (48, 64)], num_classes), optim_wrapper)
    assert {"decode.loss_ce"} <= set(log_vars)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in log_vars.values())
    assert not torch.equal(before, model.backbone.layers[0].mixer.in_proj.weight)

    model.eval()
    size = (80, 112)  # non-square, larger than the crop: several windows in slide mode
    out = model.val_step(seg_batch([size], num_classes, with_gt=False))
    assert out[0].pred_sem_seg.shape == size and out[0].seg_logits.data.shape == (num_classes, *size)
    model.test_cfg.mode = "whole"  # the whole non-square image through the backbone at once
    size = (48, 112)
    out = model.val_step(seg_batch([size], num_classes, with_gt=False))
    assert out[0].pred_sem_seg.shape == size


@pytest.mark.parametrize("config,arch", [("upernet_vim-t_8xb2-160k_ade20k-512x512.py", "tiny"),
                                         ("upernet_vim-s_8xb2-160k_ade20k-512x512.py", "small")])
def test_paper_configs_full_size(config, arch, tmp_path):
    """The released sizes as configured: an official-format 224 file loads through ``init_cfg`` (14x14 grid
    with mid cls -> 32x32 without), then one small inference (512 crops are too slow for CPU CI)."""
    cfg = Config.fromfile(osp.join(CONFIG_DIR, config))
    init_cfg = cfg.model.backbone.init_cfg
    assert init_cfg.type == "Pretrained" and init_cfg.checkpoint.startswith("checkpoints/vim_")
    assert cfg.model.test_cfg == dict(mode="slide", crop_size=(512, 512), stride=(341, 341))
    assert cfg.train_cfg.max_iters == 160000 and cfg.train_dataloader.batch_size == 2
    dim = {"tiny": 192, "small": 384}[arch]
    ckpt = str(tmp_path / f"vim_{arch}_official.pth")
    core = official_checkpoint(ckpt, img_size=224, arch=dict(embed_dim=dim, depth=24))
    cfg.model.backbone.init_cfg.checkpoint = ckpt
    model = MODELS.build(cfg.model)
    model.init_weights()
    bb = model.backbone
    assert (bb.embed_dim, bb.depth, bb.out_indices, bb.cls_token) == (dim, 24, [5, 11, 17, 23], None)
    expected_pos = resize_pos_embed(core.pos_embed.detach(), (32, 32), (14, 14), num_cls=1, keep_cls=False)
    torch.testing.assert_close(bb.pos_embed.detach(), expected_pos, rtol=0, atol=0)
    assert torch.equal(bb.layers[23].mixer.x_proj_b.weight, core.layers[23].mixer.x_proj_b.weight)
    assert isinstance(bb.taps[0][1], torch.nn.SyncBatchNorm)  # norm_cfg from the config, not the code
    assert model.decode_head.num_classes == 150 and model.auxiliary_head.in_index == 2
    model.eval()  # SyncBN runs as BN in eval mode
    out = model.val_step(seg_batch([(64, 96)], 150, with_gt=False))
    assert out[0].pred_sem_seg.shape == (64, 96)


def test_layer_decay_groups():
    cfg = Config.fromfile(TOY_CONFIG)
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    base_lr, base_wd = cfg.optim_wrapper.optimizer.lr, cfg.optim_wrapper.optimizer.weight_decay
    depth, rate = model.backbone.depth, cfg.optim_wrapper.paramwise_cfg.layer_decay_rate
    seen = {}
    for group in wrapper.optimizer.param_groups:
        for name in group["param_names"]:
            seen[name] = group
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set(seen) == trainable
    for name, group in seen.items():
        if name.startswith("backbone.layers."):
            i = int(name.split(".")[2])
            expected = base_lr * rate ** (depth - i)
        elif name.startswith(("backbone.patch_embed", "backbone.pos_embed")):
            expected = base_lr * rate ** (depth + 1)
        else:  # taps, norm_f, heads
            expected = base_lr
        assert group["lr"] == pytest.approx(expected), name
        leaf = name.rsplit(".", 1)[-1]
        no_wd = (leaf in ("pos_embed", "A_log", "A_b_log", "D", "D_b", "bias") or ".norm" in name
                 or name.endswith("norm_f.weight"))
        if no_wd:
            assert group["weight_decay"] == 0.0, name
        elif leaf == "weight" and seen[name]["params"][0].ndim > 1:
            assert group["weight_decay"] == base_wd, name
    # the release's bug: decay silently off. Here every block has its own, smaller lr
    block_lrs = {seen[f"backbone.layers.{i}.mixer.in_proj.weight"]["lr"] for i in range(depth)}
    assert len(block_lrs) == depth


def test_official_checkpoint_into_seg_backbone(tmp_path):
    """Release-format file (mid cls token, 3x3 grid) -> seg backbone without cls at a non-square 6x5 grid."""
    ckpt = str(tmp_path / "official.pth")
    core = official_checkpoint(ckpt, img_size=48)
    backbone = VimBackbone(arch=TINY_ARCH, img_size=(96, 80), out_indices=[0, 1, 2, 3],
                           tap_scales=(4, 2, 1, 0.5), with_cls_token=False,
                           init_cfg=dict(type="Pretrained", checkpoint=ckpt))
    backbone.init_weights()
    expected_pos = resize_pos_embed(core.pos_embed.detach(), (6, 5), (3, 3), num_cls=1, keep_cls=False)
    torch.testing.assert_close(backbone.pos_embed.detach(), expected_pos, rtol=0, atol=0)
    assert backbone.cls_token is None
    core_sd = core.state_dict()
    for name, value in backbone.state_dict().items():
        if name.startswith(("layers.", "patch_embed.", "norm_f.")):
            assert torch.equal(value, core_sd[name]), name

    # features == the core model without cls token on the same weights (no taps)
    plain = VimBackbone(arch=TINY_ARCH, img_size=(96, 80), out_indices=[1, 3], with_cls_token=False,
                        init_cfg=dict(type="Pretrained", checkpoint=ckpt)).eval()
    plain.init_weights()
    ref = VisionMamba(img_size=(96, 80), num_classes=0, class_token=False, **TINY_ARCH).eval()
    load_pretrained(ref, ckpt)  # the core's own loader: cls slot dropped, grid resized, strict
    x = torch.randn(2, 3, 112, 64)  # another non-square size: pos_embed resized again on the fly
    with torch.no_grad():
        feats = plain(x)
        expected = ref.forward_intermediates(x, [1, 3], intermediates_only=True)
    assert len(feats) == 2
    for f, e in zip(feats, expected):
        assert f.shape == (2, TINY_ARCH["embed_dim"], 7, 4)
        torch.testing.assert_close(f, e, rtol=0, atol=0)
    with torch.no_grad():
        maps = backbone.eval()(x)
    assert [tuple(m.shape[-2:]) for m in maps] == [(28, 16), (14, 8), (7, 4), (3, 2)]


def test_seg_backbone_rejects_other_variant(tmp_path):
    ckpt = str(tmp_path / "small.pth")
    official_checkpoint(ckpt, arch=dict(embed_dim=48, depth=4, d_state=4))
    backbone = VimBackbone(arch=TINY_ARCH, img_size=64, init_cfg=dict(type="Pretrained", checkpoint=ckpt))
    with pytest.raises(ValueError, match="embed_dim=48"):
        backbone.init_weights()


def test_toy_train_then_test(tmp_path):
    """tools/train.py then tools/test.py on generated toy data: mIoU over the four toy classes, and learning."""
    train_tool, test_tool, toy = (load_tool(n) for n in ("train", "test", "make_toy_ade"))
    data_root = toy.make_toy_ade(str(tmp_path / "toy_ade"), seed=0, num_train=8, num_val=3) + "/"
    work_dir = str(tmp_path / "work")
    iters = 20
    opts = [f"{k}.dataset.data_root={data_root}" for k in ("train_dataloader", "val_dataloader", "test_dataloader")]
    opts += ["model.backbone.arch.embed_dim=32", "model.decode_head.in_channels=[32,32,32,32]",
             "model.decode_head.channels=32", "model.auxiliary_head.in_channels=32"]
    train_tool.main([TOY_CONFIG, "--work-dir", work_dir, "--cfg-options", *opts, f"train_cfg.max_iters={iters}",
                     f"train_cfg.val_interval={iters}", f"default_hooks.checkpoint.interval={iters}",
                     "param_scheduler.0.end=5", "param_scheduler.1.begin=5", f"param_scheduler.1.end={iters}"])
    ckpt = osp.join(work_dir, f"iter_{iters}.pth")
    assert osp.isfile(ckpt)
    metrics = test_tool.main([TOY_CONFIG, ckpt, "--work-dir", str(tmp_path / "test"), "--cfg-options", *opts])
    print(metrics)
    assert set(metrics) >= {"aAcc", "mIoU", "mAcc"}
    assert len(toy.CLASSES) == Config.fromfile(TOY_CONFIG).model.decode_head.num_classes
    # chance level is ~25 % accuracy over four classes; 20 iterations already do far better
    assert metrics["aAcc"] > 50.0 and metrics["mIoU"] > 30.0, metrics
