"""mmdet 3.x front-end: every det config builds and steps, other detectors take the backbone by config,
layer decay groups, official checkpoints through ``init_cfg``. CPU, tiny archs."""
import argparse
import copy
import glob
import os.path as osp

import pytest
import torch

pytest.importorskip("mmdet")
pytest.importorskip("mmcv.ops", reason="mmcv built with ops (RoIAlign, nms) is needed by mmdet's heads")

from mmengine.config import Config  # noqa: E402
from mmengine.optim import build_optim_wrapper  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import vim_backbone.mm.det  # noqa: E402,F401  (registers VimBackbone / VimSimpleFPN in mmdet)
from mmdet.registry import MODELS  # noqa: E402
from mmdet.testing import demo_mm_inputs  # noqa: E402
from vim_backbone import VisionMamba  # noqa: E402
from vim_backbone.layers import resize_pos_embed  # noqa: E402
from vim_backbone.mm.backbone import VimBackbone  # noqa: E402
from vim_backbone.mm.runner_config import shrink_model_cfg  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DET_CONFIGS = sorted(glob.glob(osp.join(ROOT, "configs", "det", "*.py")))
PAPER_CONFIG = osp.join(ROOT, "configs", "det", "cascade-mask-rcnn_vim-t-sfp_lsj-100e_coco.py")
TINY_ARCH = dict(embed_dim=32, depth=4, d_state=4)
IMG = 64  # tiny backbone's stored pos-embed grid: 4 x 4
CH = 32  # pyramid / head width for the tests (256 in the configs)
# non-square and of different sizes: the padded batch is 96 x 128, not the stored 64 x 64 grid
IMAGE_SHAPES = [(3, 96, 128), (3, 80, 96)]


@pytest.fixture(autouse=True)
def _mmdet_scope():
    init_default_scope("mmdet")


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def shrink(cfg: Config, checkpoint: str = None) -> Config:
    """Tiny backbone (depth 4: taps at blocks 0-3), small images and heads; the config's structure kept."""
    cfg = copy.deepcopy(cfg)
    bb = cfg.model.backbone
    bb.arch = dict(TINY_ARCH)
    bb.img_size = IMG
    bb.with_cp = False
    if len(bb.get("out_indices", [-1])) > 1:
        bb.out_indices = list(range(len(bb.out_indices)))
    bb.init_cfg = None if checkpoint is None else dict(type="Pretrained", checkpoint=checkpoint)
    for aug in cfg.model.data_preprocessor.get("batch_augments") or []:
        if aug.type == "BatchFixedSizePad":
            aug.size = (128, 128)
    shrink_model_cfg(cfg.model, "det", TINY_ARCH, CH)
    return cfg


def official_checkpoint(path: str, img_size: int = 48, arch=TINY_ARCH) -> VisionMamba:
    """Write a file shaped like an official release (``{'model': sd, 'args': Namespace}``, mid cls token)."""
    core = VisionMamba(img_size=img_size, num_classes=10, class_token=True, **arch)
    torch.save({"model": core.state_dict(), "args": argparse.Namespace(model="vim_tiny_test")}, path)
    return core


def num_classes_of(model_cfg: Config) -> int:
    if "bbox_head" in model_cfg:
        return model_cfg.bbox_head.num_classes
    head = model_cfg.roi_head.bbox_head
    return (head[0] if isinstance(head, list) else head).num_classes


def loss_and_predict(model, num_classes: int, with_mask: bool) -> dict:
    """One optimisation-free training step (loss + backward) and one predict step on a synthetic batch."""
    packed = demo_mm_inputs(batch_size=len(IMAGE_SHAPES), image_shapes=IMAGE_SHAPES, num_items=[3, 2],
                            num_classes=num_classes, with_mask=with_mask)
    model.train()
    data = model.data_preprocessor(packed, True)
    losses = model.loss(data["inputs"], data["data_samples"])
    loss, log_vars = model.parse_losses(losses)
    assert torch.isfinite(loss), log_vars
    loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if n.startswith("backbone.layers.0.")]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(packed, False)
        results = model.predict(data["inputs"], data["data_samples"])
    assert len(results) == len(IMAGE_SHAPES)
    for res, shape in zip(results, IMAGE_SHAPES):
        pred = res.pred_instances
        assert pred.bboxes.shape[-1] == 4 and len(pred.scores) == len(pred.labels) == len(pred.bboxes)
        if with_mask and len(pred):
            assert tuple(pred.masks.shape[-2:]) == shape[1:]
    return log_vars


@pytest.mark.parametrize("config", DET_CONFIGS, ids=lambda p: osp.basename(p)[:-3])
def test_config_builds_and_steps(config):
    cfg = Config.fromfile(config)
    assert cfg.model.backbone.type == "VimBackbone"
    assert cfg.custom_imports.imports == ["vim_backbone.mm.det"]
    assert not cfg.model.backbone.get("with_cls_token", False)  # the release det backbone drops the cls token
    cfg = shrink(cfg)
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert isinstance(model.backbone, VimBackbone)
    log_vars = loss_and_predict(model, num_classes_of(cfg.model), with_mask="mask_head" in cfg.model.roi_head)
    assert "loss_mask" in log_vars or any(k.endswith("loss_mask") for k in log_vars)


@pytest.mark.parametrize("config", [c for c in DET_CONFIGS if "toy" not in c], ids=lambda p: osp.basename(p)[:-3])
def test_paper_configs_follow_the_recipe(config):
    cfg = Config.fromfile(config)
    assert cfg.model.type == "CascadeRCNN"
    heads = cfg.model.roi_head.bbox_head
    assert [h.type for h in heads] == ["Shared4Conv1FCBBoxHead"] * 3
    assert all(h.norm_cfg.type == "LN2d" for h in heads) and cfg.model.roi_head.mask_head.norm_cfg.type == "LN2d"
    assert cfg.model.backbone.drop_path_rate == 0.1 and cfg.model.backbone.img_size == 1024
    assert cfg.model.backbone.init_cfg.type == "Pretrained"
    assert cfg.model.backbone.init_cfg.checkpoint.endswith("acc.pth")  # the official file name, unchanged
    ow = cfg.optim_wrapper
    assert ow.type == "AmpOptimWrapper" and ow.dtype == "bfloat16"
    assert ow.constructor == "VimLayerDecayOptimWrapperConstructor" and ow.paramwise_cfg.layer_decay_rate == 0.837
    assert ow.optimizer.type == "AdamW" and ow.optimizer.lr == 1e-4 and ow.optimizer.weight_decay == 0.1
    assert cfg.auto_scale_lr.base_batch_size == 64
    # 25 "epochs" of a 4x repeated COCO = 100 epochs, LSJ at 1024
    assert cfg.train_cfg.max_epochs * cfg.train_dataloader.dataset.times == 100
    lsj = [t for t in cfg.train_dataloader.dataset.dataset.pipeline if t.type in ("RandomResize", "RandomCrop")]
    assert lsj[0].ratio_range == (0.1, 2.0) and lsj[1].crop_size == (1024, 1024)
    if "-fpn_" in config:
        assert cfg.model.neck.type == "FPN" and cfg.model.backbone.out_indices == [5, 11, 17, 23]
    else:
        assert cfg.model.neck.type == "VimSimpleFPN" and cfg.model.backbone.out_indices == [-1]


@pytest.mark.parametrize("base", ["mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py", "retinanet/retinanet_r50_fpn_1x_coco.py"])
def test_backbone_swap_by_config(base, tmp_path):
    """Other mmdet detectors take VimBackbone (four taps -> strides 4..32) through their own FPN."""
    config = tmp_path / "swap.py"
    config.write_text(
        f"_base_ = ['mmdet::{base}']\n"
        "custom_imports = dict(imports=['vim_backbone.mm.det'], allow_failed_imports=False)\n"
        f"model = dict(backbone=dict(_delete_=True, type='VimBackbone', arch={TINY_ARCH!r}, img_size={IMG},\n"
        "    out_indices=[0, 1, 2, 3], tap_scales=(4, 2, 1, 0.5), norm_cfg=dict(type='LN2d')))\n")
    cfg = Config.fromfile(str(config))
    shrink_model_cfg(cfg.model, "det", TINY_ARCH, CH)
    model = MODELS.build(cfg.model)
    model.init_weights()
    loss_and_predict(model, num_classes_of(cfg.model), with_mask="roi_head" in cfg.model)


def test_layer_decay_groups():
    cfg = shrink(Config.fromfile(PAPER_CONFIG))
    cfg.model.backbone.with_cls_token = True  # check the cls token's group too
    model = MODELS.build(cfg.model)
    ow_cfg = copy.deepcopy(cfg.optim_wrapper)
    ow_cfg.type = "OptimWrapper"  # AmpOptimWrapper refuses to build without an accelerator
    ow_cfg.pop("dtype")
    ow = build_optim_wrapper(model, ow_cfg)
    base_lr, base_wd, rate = 1e-4, 0.1, 0.837
    depth = TINY_ARCH["depth"]
    seen = {}
    for group in ow.optimizer.param_groups:
        for p in group["params"]:
            seen[id(p)] = group
    no_wd_suffixes = ("pos_embed", "cls_token", "A_log", "A_b_log", ".D", ".D_b", ".bias")
    checked = set()
    for name, p in model.named_parameters():
        if not p.requires_grad:  # norm_f of an un-normalised featmap backbone: kept, not trained
            assert name == "backbone.norm_f.weight" and id(p) not in seen
            continue
        group = seen[id(p)]
        if name.startswith("backbone.layers."):
            expected = rate ** (depth - int(name.split(".")[2]))
        elif name.startswith(("backbone.patch_embed", "backbone.pos_embed", "backbone.cls_token")):
            expected = rate ** (depth + 1)
        else:  # norm_f, neck, heads
            expected = 1.0
        assert group["lr"] == pytest.approx(base_lr * expected, rel=1e-9), name
        if name.endswith(no_wd_suffixes) or p.ndim == 1:
            assert group["weight_decay"] == 0.0, f"{name} must take no weight decay"
        else:
            assert group["weight_decay"] == pytest.approx(base_wd), name
        checked.add(name.rsplit(".", 1)[-1])
    assert {"pos_embed", "cls_token", "A_log", "A_b_log", "D", "D_b"} <= checked
    in_proj = dict(model.named_parameters())["backbone.layers.0.mixer.in_proj.weight"]
    assert seen[id(in_proj)]["weight_decay"] > 0
    assert seen[id(in_proj)]["lr"] < seen[id(dict(model.named_parameters())["neck.stages.0.0.weight"])]["lr"]


def test_pretrained_official_file_loads_into_det_backbone(tmp_path):
    path = str(tmp_path / "vim_t_midclstok_official.pth")
    core = official_checkpoint(path, img_size=48)  # 3 x 3 grid + cls at slot 4
    cfg = shrink(Config.fromfile(PAPER_CONFIG), checkpoint=path)
    model = MODELS.build(cfg.model)
    model.init_weights()
    bb = model.backbone
    assert bb.cls_token is None and bb.pos_embed.shape == (1, (IMG // 16) ** 2, TINY_ARCH["embed_dim"])
    expected_pos = resize_pos_embed(core.pos_embed.detach(), (4, 4), (3, 3), num_cls=1, keep_cls=False)
    torch.testing.assert_close(bb.pos_embed.detach(), expected_pos)
    # the cls slot (M // 2 = 4) is not in the grid: a 0-index split would have shifted every token by one
    wrong = resize_pos_embed(core.pos_embed[:, 1:].detach(), (4, 4), (3, 3), num_cls=0)
    assert not torch.allclose(bb.pos_embed.detach(), wrong)
    core_sd = core.state_dict()
    for k, v in bb.state_dict().items():
        if k.startswith(("layers.", "patch_embed.", "norm_f.")):
            torch.testing.assert_close(v, core_sd[k], msg=k)
    # the whole detector still trains after loading
    loss_and_predict(model, num_classes_of(cfg.model), with_mask=True)


def test_pretrained_other_variant_is_refused(tmp_path):
    path = str(tmp_path / "other.pth")
    official_checkpoint(path, img_size=48, arch=dict(embed_dim=48, depth=4, d_state=4))
    cfg = shrink(Config.fromfile(PAPER_CONFIG), checkpoint=path)
    model = MODELS.build(cfg.model)
    with pytest.raises(ValueError, match="embed_dim=48"):
        model.init_weights()


def test_simple_fpn_shapes_and_errors():
    from vim_backbone.mm.det import VimSimpleFPN
    neck = VimSimpleFPN(in_channels=32, out_channels=16, num_outs=5)
    outs = neck((torch.randn(2, 32, 6, 10),))
    assert [tuple(o.shape[-2:]) for o in outs] == [(24, 40), (12, 20), (6, 10), (3, 5), (2, 3)]
    assert all(o.shape[1] == 16 for o in outs)
    with pytest.raises(ValueError, match="one backbone map"):
        neck((torch.randn(2, 32, 6, 10),) * 2)
    with pytest.raises(ValueError, match="scale 3"):
        VimSimpleFPN(in_channels=32, scales=(3,))
