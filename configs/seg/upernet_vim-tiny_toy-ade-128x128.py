# A few-minute CPU run of the full seg pipeline: toy ADE20k-format data (tools/make_toy_ade.py), a 4-block
# Vim with the four taps, UperNet + FCN auxiliary head, layer-decay AdamW, IoUMetric.
#
#   python tools/make_toy_ade.py --out data/toy_ade
#   python tools/train.py configs/seg/upernet_vim-tiny_toy-ade-128x128.py --work-dir work_dirs/toy_seg
#   python tools/test.py configs/seg/upernet_vim-tiny_toy-ade-128x128.py work_dirs/toy_seg/iter_300.pth
_base_ = [
    'mmseg::_base_/models/upernet_vit-b16_ln_mln.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
]
custom_imports = dict(imports=['vim_backbone.mm.seg'], allow_failed_imports=False)

# ---------------------------------------------------------------------------------------------- data
dataset_type = 'BaseSegDataset'
data_root = 'data/toy_ade/'
# label 0 ("other") is ignored via reduce_zero_label, as ADE20k does; these are labels 1..4
metainfo = dict(
    classes=('red_plain', 'green_grain', 'blue_stripes', 'magenta_checker'),
    palette=[[220, 40, 40], [40, 180, 60], [40, 80, 220], [200, 60, 200]])
crop_size = (128, 128)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(192, 144), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(192, 144), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
_dataset = dict(type=dataset_type, data_root=data_root, metainfo=metainfo, reduce_zero_label=True,
                img_suffix='.jpg', seg_map_suffix='.png')
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(_dataset, data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(_dataset, data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

# --------------------------------------------------------------------------------------------- model
embed_dim = 64
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='VimBackbone',
        arch=dict(embed_dim=embed_dim, depth=4, d_state=8),
        img_size=crop_size,
        out_indices=[0, 1, 2, 3],
        tap_scales=(4, 2, 1, 0.5),
        norm_cfg=dict(type='LN2d'),
        with_cls_token=False,
        drop_path_rate=0.0),
    neck=None,
    decode_head=dict(in_channels=[embed_dim] * 4, channels=embed_dim, num_classes=4, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=embed_dim, in_index=2, channels=32, num_classes=4, norm_cfg=norm_cfg),
    # whole, non-square images (96..144 x 128..192) straight through the backbone
    test_cfg=dict(mode='whole'))

# ------------------------------------------------------------------------------------------ schedule
max_iters = 300
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, betas=(0.9, 0.999), weight_decay=0.01),
    constructor='VimLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.92))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=20),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=20, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
env_cfg = dict(cudnn_benchmark=False)
randomness = dict(seed=0)
