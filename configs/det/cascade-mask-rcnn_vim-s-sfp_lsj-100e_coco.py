# Vim-S + simple feature pyramid + Cascade Mask R-CNN: the Vim-Ti recipe with the Vim-S backbone.
#
# Layer decay stays 0.837: it is a per-block factor, and Vim-S has the same 24 blocks as Vim-Ti (ViTDet
# picks the rate by depth: 0.7 for 12 blocks, 0.8 for 24, 0.9 for 32); the official Vim-S detectron2
# config (cascade_mask_rcnn_vimdet_s_100ep.py) also uses 0.837.
_base_ = ['./cascade-mask-rcnn_vim-t-sfp_lsj-100e_coco.py']

embed_dim = 384
model = dict(
    backbone=dict(
        arch='small',
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/vim_s_midclstok_80p5acc.pth')),
    neck=dict(in_channels=embed_dim))
