# Vim-Ti + simple feature pyramid + Cascade Mask R-CNN, the paper's COCO recipe (ViTDet's, as in the
# official detectron2 code): LSJ 1024x1024, 100 epochs, batch 64 (8 GPUs x 8), AdamW lr 1e-4 wd 0.1,
# layer-wise lr decay 0.837, drop path 0.1, bf16 AMP. Paper: 45.7 box AP / 39.2 mask AP.
#
# Backbone: the residual stream after the last block (stride 16, no final norm), as the release's
# VisionMambaDet(last_layer_process="add"). with_cls_token=False: the release det backbone deletes the
# class token (Vim-Ti config: if_cls_token=False; Vim-S: the token is deleted after loading), so the
# scan runs over image patches only. The official classification file loads unchanged: its cls token,
# the cls slot of pos_embed (index M // 2) and the head are dropped, the 14x14 grid is resized to 64x64.
_base_ = [
    'mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py',
    'mmdet::common/lsj-100e_coco-instance.py',
]
custom_imports = dict(imports=['vim_backbone.mm.det'], allow_failed_imports=False)

image_size = (1024, 1024)
norm_cfg = dict(type='LN2d', requires_grad=True)  # LayerNorm over channels (vim_backbone.mm.norm)
embed_dim = 192

model = dict(
    data_preprocessor=dict(
        pad_size_divisor=32,
        pad_mask=True,
        # LSJ: every image is padded to the full 1024 square, so the backbone always sees the 64x64 grid
        batch_augments=[dict(type='BatchFixedSizePad', size=image_size, pad_mask=True)]),
    backbone=dict(
        _delete_=True,
        type='VimBackbone',
        arch='tiny',
        img_size=1024,
        patch_size=16,
        stride=16,
        out_indices=[-1],
        with_cls_token=False,
        drop_path_rate=0.1,
        with_cp=False,
        # True (the default): each block keeps 61% fewer bytes for its backward and makes them again there
        # (fused backend), for a step 3-4% longer (README, "Less memory in training")
        scan_recompute=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/vim_t_midclstok_76p1acc.pth')),
    neck=dict(
        _delete_=True,
        type='VimSimpleFPN',
        in_channels=embed_dim,
        out_channels=256,
        scales=(4.0, 2.0, 1.0, 0.5),
        num_outs=5,  # + P6 by stride-2 max-pool of P5
        norm_cfg=norm_cfg),
    rpn_head=dict(num_convs=2),  # ViTDet: 2 convs in the RPN head
    roi_head=dict(
        # 4conv1fc box heads with LN in every cascade stage
        bbox_head=[
            dict(
                type='Shared4Conv1FCBBoxHead',
                in_channels=256,
                conv_out_channels=256,
                fc_out_channels=1024,
                roi_feat_size=7,
                num_classes=80,
                norm_cfg=norm_cfg,
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder',
                    target_means=[0., 0., 0., 0.],
                    target_stds=[0.1, 0.1, 0.2, 0.2]),
                reg_class_agnostic=True,
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0)),
            dict(
                type='Shared4Conv1FCBBoxHead',
                in_channels=256,
                conv_out_channels=256,
                fc_out_channels=1024,
                roi_feat_size=7,
                num_classes=80,
                norm_cfg=norm_cfg,
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder',
                    target_means=[0., 0., 0., 0.],
                    target_stds=[0.05, 0.05, 0.1, 0.1]),
                reg_class_agnostic=True,
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0)),
            dict(
                type='Shared4Conv1FCBBoxHead',
                in_channels=256,
                conv_out_channels=256,
                fc_out_channels=1024,
                roi_feat_size=7,
                num_classes=80,
                norm_cfg=norm_cfg,
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder',
                    target_means=[0., 0., 0., 0.],
                    target_stds=[0.033, 0.033, 0.067, 0.067]),
                reg_class_agnostic=True,
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0)),
        ],
        mask_head=dict(norm_cfg=norm_cfg)))

# LSJ: scale jitter 0.1-2.0, crop to 1024, pad to 1024 (test: longer side 1024, padded to the same square)
backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.1, 2.0), keep_ratio=True),
    dict(
        type='RandomCrop',
        crop_type='absolute_range',
        crop_size=image_size,
        recompute_bbox=True,
        allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    # same square as in training; pad value = the BGR mean, i.e. 0 after normalisation like BatchFixedSizePad
    dict(type='Pad', size=image_size, pad_val=dict(img=(104, 116, 124))),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
# the mmdet LSJ base repeats COCO 4x per "epoch": 25 of them = 100 real epochs
train_dataloader = dict(
    batch_size=8,
    num_workers=8,
    dataset=dict(dataset=dict(pipeline=train_pipeline)))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    dtype='bfloat16',  # no loss scaling; the scan and the residual stream stay in fp32 inside the model
    constructor='VimLayerDecayOptimWrapperConstructor',
    # lr * 0.837 ** (25 - layer): block i gets 0.837 ** (24 - i), the embeddings 0.837 ** 25, neck/heads 1
    paramwise_cfg=dict(layer_decay_rate=0.837),
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1))

max_epochs = 25
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=5)
# ViTDet schedule: 250-iter warmup, lr x0.1 at 88 and 96 of 100 real epochs (22 and 24 of the 25)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[22, 24], gamma=0.1),
]
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3))
# lr above is for 64 images per iteration; `tools/train.py --auto-scale-lr` rescales it for other sizes
auto_scale_lr = dict(base_batch_size=64)
