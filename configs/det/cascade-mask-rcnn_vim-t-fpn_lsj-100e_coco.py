# Vim-Ti with four taps + mmdet's FPN + Cascade Mask R-CNN (the seg recipe's pyramid, for detection).
#
# Residual streams after blocks 5, 11, 17, 23 (stride 16) become strides 4/8/16/32 inside the backbone
# (2x deconv / deconv / identity / max-pool, LN in the 4x tap); FPN adds P6 by max-pool.
_base_ = ['./cascade-mask-rcnn_vim-t-sfp_lsj-100e_coco.py']

model = dict(
    backbone=dict(
        out_indices=[5, 11, 17, 23],
        tap_scales=(4.0, 2.0, 1.0, 0.5),
        norm_cfg={{_base_.norm_cfg}}),
    neck=dict(
        _delete_=True,
        type='FPN',
        in_channels=[192, 192, 192, 192],
        out_channels=256,
        num_outs=5))
