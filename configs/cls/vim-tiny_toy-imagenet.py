# Toy run: a 4-block, D=64 Vim on a small synthetic ImageNet-style folder dataset, 32 x 32 images,
# patch 4 / stride 4 (8 x 8 tokens + the middle class token). Trains and evaluates on CPU in minutes.
#
#   python tools/make_toy_imagenet.py data/toy_imagenet          # 4 classes, 64 train / 16 val each, 32 px
#   python tools/train.py configs/cls/vim-tiny_toy-imagenet.py --work-dir work_dirs/toy
#   python tools/test.py configs/cls/vim-tiny_toy-imagenet.py work_dirs/toy/iter_100.pth
#
# Same model family, wrapper and tools as the ImageNet configs; the augmentation is light (crop + flip) so
# a few hundred CPU iterations are enough.
_base_ = ['mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['vim_backbone.mm.cls'], allow_failed_imports=False)

data_root = 'data/toy_imagenet'
num_classes = 4
img_size = 32

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VimBackbone',
        arch=dict(embed_dim=64, depth=4, d_state=8),
        img_size=img_size,
        patch_size=4,
        stride=4,
        with_cls_token=True,
        out_type='cls_token',
        final_norm=True,
    ),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=num_classes,
        in_channels=64,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1,),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.0),
    ),
)

data_preprocessor = dict(
    num_classes=num_classes,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True,
)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.6, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size), backend='pillow', interpolation='bicubic'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='train', pipeline=train_pipeline),
    sampler=dict(type='InfiniteSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=32,
    num_workers=0,
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='val', pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1,))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    # no layer decay in pre-training (rate 1); the constructor takes no-weight-decay names from the
    # backbone's no_weight_decay() and skips 1-D params / biases
    constructor='VimLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=1.0),
)
max_iters = 100
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=10),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=False, begin=10, end=max_iters),
]
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=max_iters)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters),
)
log_processor = dict(by_epoch=False)
randomness = dict(seed=0, deterministic=False)
