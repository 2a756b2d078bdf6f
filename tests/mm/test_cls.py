"""mmpretrain front-end: every cls config builds and steps (tiny arch), official checkpoints through
``tools/test.py`` give the core model's logits, the "+" fine-tunes start from stride-16 weights, and the
toy run trains and evaluates through the tools. CPU."""
import argparse
import copy
import glob
import os.path as osp
import pickle

import pytest
import torch

pytest.importorskip("mmpretrain")

from mmengine.config import Config  # noqa: E402
from mmengine.optim import OptimWrapper, build_optim_wrapper  # noqa: E402
from mmengine.registry import HOOKS, PARAM_SCHEDULERS, init_default_scope  # noqa: E402
from mmengine.runner import Runner, load_checkpoint  # noqa: E402

import vim_backbone.mm.cls  # noqa: E402,F401  (registers VimBackbone in mmpretrain)
from mmpretrain.registry import DATA_SAMPLERS, MODELS, TRANSFORMS  # noqa: E402
from mmpretrain.structures import DataSample  # noqa: E402
from vim_backbone import VisionMamba, create_model  # noqa: E402
from vim_backbone.layers import resize_pos_embed  # noqa: E402
from vim_backbone.mm import checkpoint_io  # noqa: E402
from tests.helpers import load_tool  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(ROOT, "configs", "cls")
CLS_CONFIGS = sorted(glob.glob(osp.join(CONFIG_DIR, "*.py")))
IN1K_CONFIGS = [c for c in CLS_CONFIGS if "in1k" in osp.basename(c)]
TOY_CONFIG = osp.join(CONFIG_DIR, "vim-tiny_toy-imagenet.py")
TI_CONFIG = osp.join(CONFIG_DIR, "vim-tiny-p16_8xb128_in1k.py")
TINY_ARCH = dict(embed_dim=32, depth=2, d_state=4)
TINY_IMG, TINY_PATCH = 32, 8


@pytest.fixture(autouse=True)
def _mmpretrain_scope():
    init_default_scope("mmpretrain")


def write_official(path: str, model: VisionMamba, head_scale: float = 1.0) -> dict:
    """Save ``model`` as the release does: DeiT trainer dict with ``model``, ``model_ema``, ``args``, ..."""
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    if head_scale != 1.0:  # spread the logits of an untrained head so comparisons mean something
        sd["head.weight"] *= head_scale
    ema = {k: v + 0.5 for k, v in sd.items()}  # must never be the weights that get loaded
    torch.save({"model": sd, "model_ema": ema, "optimizer": {"state": {}, "param_groups": []}, "epoch": 299,
                "scaler": "none", "args": argparse.Namespace(model="vim_tiny_patch16_224", lr=1e-3)}, path)
    return sd


def shrink(cfg: Config) -> Config:
    """The config with a tiny backbone at 32 px; everything else (head, loss, augments, optim) kept."""
    cfg = copy.deepcopy(cfg)
    bb = cfg.model.backbone
    ratio = bb.get("stride", 16) / bb.get("patch_size", 16)
    bb.update(arch=dict(TINY_ARCH), img_size=TINY_IMG, patch_size=TINY_PATCH, stride=int(TINY_PATCH * ratio))
    cfg.model.head.in_channels = TINY_ARCH["embed_dim"]
    cfg.model.setdefault("data_preprocessor", cfg.get("data_preprocessor"))
    return cfg


def fake_batch(num_classes: int, n: int = 4, size: int = TINY_IMG) -> dict:
    g = torch.Generator().manual_seed(0)
    return dict(inputs=[torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g) for _ in range(n)],
                data_samples=[DataSample().set_gt_label(i % num_classes) for i in range(n)])


# ------------------------------------------------------------------------------------------------ recipes
def test_in1k_recipes_match_the_release():
    ti, s = Config.fromfile(TI_CONFIG), Config.fromfile(osp.join(CONFIG_DIR, "vim-small-p16_8xb64_in1k.py"))
    for cfg, dim, lr, wd, dpr, batch in ((ti, 192, 1e-3, 0.1, 0.0, 128), (s, 384, 1e-3, 0.05, 0.05, 64)):
        bb = cfg.model.backbone
        assert (bb.type, bb.with_cls_token, bb.out_type, bb.final_norm) == ("VimBackbone", True, "cls_token", True)
        assert (cfg.model.head.type, cfg.model.head.in_channels, cfg.model.head.num_classes) == ("LinearClsHead", dim, 1000)
        assert cfg.optim_wrapper.optimizer.lr == pytest.approx(lr)
        assert (cfg.optim_wrapper.optimizer.weight_decay, bb.drop_path_rate) == (wd, dpr)
        assert cfg.train_dataloader.batch_size == batch and cfg.train_cfg.max_epochs == 300
        assert cfg.train_dataloader.sampler.type == "RepeatAugSampler"
        assert [a.type for a in cfg.model.train_cfg.augments] == ["Mixup", "CutMix"]
        assert cfg.model.head.loss.label_smooth_val == 0.1
        assert [h.type for h in cfg.custom_hooks] == ["EMAHook"] and cfg.custom_hooks[0].momentum == pytest.approx(4e-5)
        assert cfg.optim_wrapper.get("type", "OptimWrapper") == "OptimWrapper"  # fp32 as released
        warmup, cosine = cfg.param_scheduler
        assert (warmup.end, cosine.eta_min, cosine.end) == (5, 1e-5, 300)
        assert warmup.start_factor * lr == pytest.approx(1e-6)
        erasing = [t for t in cfg.train_dataloader.dataset.pipeline if t.type == "RandomErasing"][0]
        assert erasing.erase_prob == 0.25
    for name in ("vim-tiny-p16-s8_8xb128_in1k-ft.py", "vim-small-p16-s8_8xb128_in1k-ft.py"):
        ft = Config.fromfile(osp.join(CONFIG_DIR, name))
        assert (ft.model.backbone.stride, ft.model.backbone.drop_path_rate, ft.train_cfg.max_epochs) == (8, 0.0, 30)
        assert (ft.optim_wrapper.optimizer.lr, ft.optim_wrapper.optimizer.weight_decay) == (pytest.approx(1e-5), 1e-8)
        assert ft.model.init_cfg.type == "Pretrained"
    for name in ("vim-tiny-p16_8xb128_in1k_bf16.py", "vim-small-p16_8xb64_in1k_bf16.py"):
        bf16 = Config.fromfile(osp.join(CONFIG_DIR, name))
        assert (bf16.optim_wrapper.type, bf16.optim_wrapper.dtype) == ("AmpOptimWrapper", "bfloat16")


# ----------------------------------------------------------------------------------- every config steps
@pytest.mark.parametrize("config", CLS_CONFIGS, ids=osp.basename)
def test_config_builds_and_steps(config, tmp_path):
    checkpoint_io.install()
    cfg = shrink(Config.fromfile(config))
    num_classes = cfg.model.head.num_classes
    init = cfg.model.get("init_cfg")
    if init is not None and init.get("type") == "Pretrained":
        # the "+" fine-tunes: a stride-16 file in the release format, pos_embed resized on load
        src = VisionMamba(img_size=TINY_IMG, patch_size=TINY_PATCH, stride=TINY_PATCH, num_classes=num_classes,
                          **TINY_ARCH)
        init.checkpoint = str(tmp_path / "stride16_official.pth")
        src_sd = write_official(init.checkpoint, src)

    # pipelines, sampler and hooks of the real config build
    for pipeline in (cfg.train_dataloader.dataset.pipeline, cfg.test_dataloader.dataset.pipeline):
        for t in pipeline:
            TRANSFORMS.build(t)
    DATA_SAMPLERS.build(cfg.train_dataloader.sampler, default_args=dict(dataset=list(range(8))))
    for hook in cfg.get("custom_hooks", []):
        HOOKS.build(hook)

    model = MODELS.build(cfg.model)
    model.init_weights()
    if init is not None and init.get("type") == "Pretrained":
        grid = model.backbone.patch_embed.grid_size
        assert grid != src.patch_embed.grid_size
        expected_pe = resize_pos_embed(src_sd["pos_embed"], grid, src.patch_embed.grid_size, num_cls=1)
        torch.testing.assert_close(model.backbone.pos_embed.data, expected_pe)
        torch.testing.assert_close(model.head.fc.weight.data, src_sd["head.weight"])  # head loaded, not "model_ema"
        torch.testing.assert_close(model.backbone.layers[1].mixer.A_log.data, src_sd["layers.1.mixer.A_log"])

    optim_cfg = copy.deepcopy(cfg.optim_wrapper)
    if optim_cfg.get("type") == "AmpOptimWrapper" and not torch.cuda.is_available():
        optim_cfg.type = "OptimWrapper"  # autocast needs an accelerator; the rest of the recipe is tested
        optim_cfg.pop("dtype")
    optim_wrapper = build_optim_wrapper(model, optim_cfg)
    assert isinstance(optim_wrapper, OptimWrapper)
    decays = {}
    for group in optim_wrapper.optimizer.param_groups:
        for p in group["params"]:
            decays[id(p)] = group["weight_decay"]
    named = dict(model.named_parameters())
    for name in ("backbone.pos_embed", "backbone.cls_token", "backbone.layers.0.mixer.A_log",
                 "backbone.layers.0.mixer.A_b_log", "backbone.layers.0.mixer.D", "backbone.norm_f.weight"):
        assert decays[id(named[name])] == 0.0, name
    assert decays[id(named["backbone.layers.0.mixer.in_proj.weight"])] > 0
    for sched in copy.deepcopy(cfg.param_scheduler):
        sched.pop("convert_to_iter_based", None)
        PARAM_SCHEDULERS.build(sched, default_args=dict(optimizer=optim_wrapper))

    before = model.backbone.layers[0].mixer.in_proj.weight.detach().clone()
    model.train()
    losses = model.train_step(fake_batch(num_classes), optim_wrapper)
    assert torch.isfinite(losses["loss"]), losses
    assert not torch.equal(before, model.backbone.layers[0].mixer.in_proj.weight)

    model.eval()
    preds = model.test_step(fake_batch(num_classes))
    assert len(preds) == 4 and preds[0].pred_score.shape == (num_classes,)
    torch.testing.assert_close(preds[0].pred_score.sum(), torch.tensor(1.0))


def test_backbone_cls_token_is_the_core_classifier_input():
    """VimBackbone(out_type='cls_token') + LinearClsHead == VisionMamba's own head (middle token, norm_f)."""
    cfg = shrink(Config.fromfile(TI_CONFIG))
    model = MODELS.build(cfg.model).eval()
    core = VisionMamba(img_size=TINY_IMG, patch_size=TINY_PATCH, stride=TINY_PATCH, num_classes=1000, **TINY_ARCH).eval()
    core_sd = core.state_dict()
    missing, unexpected = model.load_state_dict(checkpoint_io.to_mm_layout(core_sd), strict=True)
    assert not missing and not unexpected
    x = torch.randn(2, 3, 48, 40)  # other size than img_size: pos_embed resized on the fly
    with torch.no_grad():
        torch.testing.assert_close(model(x, mode="tensor"), core(x), rtol=0, atol=1e-6)


# ------------------------------------------------------------------ official checkpoint via tools/test.py
@pytest.fixture(scope="module")
def toy224(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy224")
    load_tool("make_toy_imagenet").make_toy_imagenet(str(out), num_classes=2, train_per_class=0, val_per_class=1,
                                                     size=224)
    return str(out)


def test_official_checkpoint_tools_test_gives_core_logits(toy224, tmp_path):
    """``tools/test.py <vim-t in1k config> --checkpoint <official file>``: same logits as the core model."""
    torch.manual_seed(0)
    official = str(tmp_path / "vim_t_midclstok_76p1acc.pth")
    write_official(official, create_model("vim_tiny_patch16_224"), head_scale=50.0)
    core = create_model("vim_tiny_patch16_224", checkpoint=official).eval()
    data_opts = [f"test_dataloader.dataset.data_root={toy224}", "test_dataloader.dataset.ann_file=meta/val.txt",
                 "test_dataloader.batch_size=2", "test_dataloader.num_workers=0"]

    # 1. the tool itself, predictions dumped
    out = str(tmp_path / "preds.pkl")
    metrics = load_tool("test").main([TI_CONFIG, "--checkpoint", official, "--work-dir", str(tmp_path / "work"),
                                      "--out", out, "--cfg-options", *data_opts])
    assert "accuracy/top1" in metrics
    with open(out, "rb") as f:
        preds = sorted(pickle.load(f), key=lambda p: p["sample_idx"])
    assert len(preds) == 2

    # 2. the same config's model (loaded as the runner loads it) and data, logits vs the core directly
    cfg = Config.fromfile(TI_CONFIG)
    cfg.merge_from_dict({k: v for k, v in (o.split("=", 1) for o in data_opts)})
    cfg.test_dataloader.batch_size = 2
    cfg.test_dataloader.num_workers = 0
    cfg.model.data_preprocessor = cfg.data_preprocessor
    model = MODELS.build(cfg.model).eval()
    load_checkpoint(model, official, map_location="cpu", strict=True)  # what the runner does, strictly
    batch = next(iter(Runner.build_dataloader(cfg.test_dataloader)))
    data = model.data_preprocessor(batch, training=False)
    with torch.no_grad():
        mm_logits = model(data["inputs"], mode="tensor")
        core_logits = core(data["inputs"])
    assert core_logits.std() > 1.0  # spread logits: the comparison is not against a flat softmax
    torch.testing.assert_close(mm_logits, core_logits, rtol=0, atol=1e-5)
    dumped = torch.stack([p["pred_score"] for p in preds])
    torch.testing.assert_close(dumped.log(), core_logits.log_softmax(-1), rtol=0, atol=1e-4)


# ---------------------------------------------------------------------------- toy run through the tools
def test_toy_train_then_test(tmp_path):
    data = str(tmp_path / "toy")
    load_tool("make_toy_imagenet").make_toy_imagenet(data, num_classes=4, train_per_class=16, val_per_class=8,
                                                     size=32)
    work = str(tmp_path / "work")
    iters = 20
    opts = [f"train_dataloader.dataset.data_root={data}", f"val_dataloader.dataset.data_root={data}",
            f"test_dataloader.dataset.data_root={data}", "train_dataloader.batch_size=16",
            f"train_cfg.max_iters={iters}", f"train_cfg.val_interval={iters}",
            f"default_hooks.checkpoint.interval={iters}", f"param_scheduler.1.end={iters}",
            "param_scheduler.0.end=5", "param_scheduler.1.begin=5"]
    load_tool("train").main([TOY_CONFIG, "--work-dir", work, "--cfg-options", *opts])
    ckpt = osp.join(work, f"iter_{iters}.pth")
    assert osp.isfile(ckpt)
    metrics = load_tool("test").main([TOY_CONFIG, ckpt, "--work-dir", str(tmp_path / "test"), "--cfg-options", *opts])
    assert metrics["accuracy/top1"] > 50.0, metrics  # 4 classes: chance is 25
