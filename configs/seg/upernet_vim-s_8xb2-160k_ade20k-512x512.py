# UperNet + FCN auxiliary head on Vim-S, ADE20k 512x512, 160k iterations, 8 GPUs x 2 images (batch 16).
# Same recipe as the Vim-Ti config (see there); D = 384 and a little more stochastic depth.
_base_ = ['./upernet_vim-t_8xb2-160k_ade20k-512x512.py']

embed_dim = 384
model = dict(
    backbone=dict(
        arch='small',
        drop_path_rate=0.15,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/vim_s_midclstok_80p5acc.pth')),
    decode_head=dict(in_channels=[embed_dim] * 4, channels=embed_dim),
    auxiliary_head=dict(in_channels=embed_dim))
