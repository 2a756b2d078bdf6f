# Toy detector for CPU: a tiny Vim (embed_dim 64, depth 4) + simple feature pyramid + a slim Mask R-CNN,
# trained from scratch on the generated shapes set (tools/make_toy_coco.py) and scored with CocoMetric
# (bbox + segm). The real pipeline end to end in a few minutes on 2 CPU cores:
#
#   python tools/make_toy_coco.py --out data/toy_coco
#   python tools/train.py configs/det/mask-rcnn_vim-t-tiny_toy-coco.py
#   python tools/test.py configs/det/mask-rcnn_vim-t-tiny_toy-coco.py \
#       work_dirs/mask-rcnn_vim-t-tiny_toy-coco/iter_400.pth
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['vim_backbone.mm.det'], allow_failed_imports=False)

image_size = (128, 128)
embed_dim = 64
# pyramid / head width (256 in the COCO configs). NOTE: 64 channels and 256-d fcs left the RoI heads near
# chance after 400 iterations (loss_cls flat at ~0.7); 128 / 1024 fit a fixed batch ~3x faster
channels = 128
num_classes = 3
norm_cfg = dict(type='LN2d', requires_grad=True)

model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(
        _delete_=True,
        type='VimBackbone',
        arch=dict(embed_dim=embed_dim, depth=4),  # d_state 16, expand 2 as in every Vim
        img_size=image_size,
        out_indices=[-1],
        with_cls_token=False,
        drop_path_rate=0.0,
        init_cfg=None),  # from scratch: no download on the toy path
    neck=dict(
        _delete_=True,
        type='VimSimpleFPN',
        in_channels=embed_dim,
        out_channels=channels,
        scales=(4.0, 2.0, 1.0, 0.5),
        num_outs=5,
        norm_cfg=norm_cfg),
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(in_channels=channels, fc_out_channels=1024, num_classes=num_classes),
        mask_roi_extractor=dict(out_channels=channels),
        mask_head=dict(num_convs=2, in_channels=channels, conv_out_channels=64, num_classes=num_classes)),
    # fewer samples / proposals than COCO: a toy image holds at most 4 objects
    train_cfg=dict(
        rpn=dict(sampler=dict(num=128)),
        rpn_proposal=dict(nms_pre=500, max_per_img=200),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(
        rpn=dict(nms_pre=300, max_per_img=100),
        rcnn=dict(max_per_img=20)))

dataset_type = 'CocoDataset'
data_root = 'data/toy_coco/'
metainfo = dict(classes=('rectangle', 'ellipse', 'triangle'),
                palette=[(220, 20, 60), (0, 130, 255), (0, 180, 60)])
backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,  # 2-core machines: decoding 160 px PNGs in the main process is cheaper than workers
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/val.json',
        data_prefix=dict(img='val/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/val.json',
    metric=['bbox', 'segm'],
    format_only=False,
    backend_args=backend_args)
test_evaluator = val_evaluator

optim_wrapper = dict(
    type='OptimWrapper',
    constructor='VimLayerDecayOptimWrapperConstructor',
    # from scratch: no layer decay (rate 1), but the same no-weight-decay groups as the COCO recipe
    paramwise_cfg=dict(layer_decay_rate=1.0),
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=10.0))

max_iters = 400
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=1e-5),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=200, max_keep_ckpts=2, save_last=True))
log_processor = dict(type='LogProcessor', window_size=20, by_epoch=False)
randomness = dict(seed=0)
auto_scale_lr = dict(base_batch_size=4)
