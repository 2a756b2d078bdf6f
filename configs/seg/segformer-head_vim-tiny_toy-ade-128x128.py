# Backbone swap by config only: the toy Vim with mmseg's SegFormer (all-MLP) decode head instead of UperNet.
_base_ = ['./upernet_vim-tiny_toy-ade-128x128.py']

model = dict(
    decode_head=dict(
        _delete_=True,
        type='SegformerHead',
        in_channels=[64] * 4,
        in_index=[0, 1, 2, 3],
        channels=64,
        dropout_ratio=0.1,
        num_classes=4,
        norm_cfg=dict(type='BN', requires_grad=True),
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
