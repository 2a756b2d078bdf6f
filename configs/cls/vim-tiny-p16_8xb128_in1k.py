# Vim-Ti (mid class token) on ImageNet-1k, the released recipe (hustvl/Vim vim/scripts/pt-vim-t.sh):
# 8 GPUs x 128, 300 epochs, AdamW lr 5e-4 * 1024 / 512, weight decay 0.1, drop path 0.0, cosine with
# 5 warm-up epochs (from 1e-6) down to 1e-5, DeiT augmentation (RandAugment rand-m9-mstd0.5-inc1, Mixup 0.8,
# CutMix 1.0, label smoothing 0.1, random erasing 0.25, repeated augmentation), EMA 0.99996, fp32, no
# gradient clipping. Released: 76.1 top-1.
#
#   python tools/train.py configs/cls/vim-tiny-p16_8xb128_in1k.py              # or tools/dist_train.sh ... 8
#   python tools/test.py configs/cls/vim-tiny-p16_8xb128_in1k.py --checkpoint vim_t_midclstok_76p1acc.pth
#
# The official file (https://huggingface.co/hustvl/Vim-tiny-midclstok) is read as downloaded: its
# {"model": ...} state dict is converted to backbone.* / head.fc.* on load.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['vim_backbone.mm.cls'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VimBackbone',
        arch='tiny',
        img_size=224,
        patch_size=16,
        stride=16,
        with_cls_token=True,
        out_type='cls_token',  # norm_f output at the middle token (index M // 2), as the release classifies
        final_norm=True,
        drop_path_rate=0.0,
    ),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=192,
        # mixed soft targets, smoothed: timm's Mixup(label_smoothing=0.1) + SoftTargetCrossEntropy
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.0),
    ),
    # Mixup or CutMix, one per batch with equal chance (mixup_switch_prob 0.5)
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]),
)

# data: the base pipeline is DeiT's (RandomResizedCrop bicubic, flip, RandAugment m9 mstd 0.5 increasing,
# RandomErasing 0.25 per-pixel); eval resizes the short side to 256 (crop ratio 0.875) and crops 224.
train_dataloader = dict(
    batch_size=128,
    num_workers=8,
    drop_last=True,
    sampler=dict(type='RepeatAugSampler', shuffle=True, num_repeats=3),
)
val_dataloader = dict(batch_size=128, num_workers=8)
test_dataloader = val_dataloader

# optimizer: no weight decay on 1-D parameters (norms, biases, D, D_b) nor on the entries of the model's
# no_weight_decay(): pos_embed, cls_token, A_log, A_b_log (Vim's constructor with no layer decay: rate 1)
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=5e-4 * 1024 / 512, weight_decay=0.1, eps=1e-8, betas=(0.9, 0.999)),
    constructor='VimLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=1.0),
    clip_grad=None,
)

param_scheduler = [
    # --warmup-lr 1e-6 --warmup-epochs 5
    dict(type='LinearLR', start_factor=1e-6 / (5e-4 * 1024 / 512), by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    # --sched cosine --min-lr 1e-5
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5, end=300),
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
auto_scale_lr = dict(base_batch_size=1024)

# --model-ema-decay 0.99996, updated every iteration; validation and saved weights use the EMA
custom_hooks = [dict(type='EMAHook', momentum=4e-5, priority='ABOVE_NORMAL')]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3, save_best='auto'),
)
