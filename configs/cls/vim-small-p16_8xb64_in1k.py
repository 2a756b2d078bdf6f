# Vim-S (mid class token) on ImageNet-1k, the released recipe (hustvl/Vim vim/scripts/pt-vim-s.sh):
# 8 GPUs x 64 (total 512), --lr 1e-3 (scaled by 512 / 512), weight decay 0.05, drop path 0.05; the rest as
# Vim-Ti (300 epochs, cosine, 5 warm-up epochs, DeiT augmentation, EMA, fp32). Released: 80.5 top-1.
#
#   python tools/test.py configs/cls/vim-small-p16_8xb64_in1k.py --checkpoint vim_s_midclstok_80p5acc.pth
_base_ = ['./vim-tiny-p16_8xb128_in1k.py']

model = dict(
    backbone=dict(arch='small', drop_path_rate=0.05),
    head=dict(in_channels=384),
)

train_dataloader = dict(batch_size=64)
val_dataloader = dict(batch_size=64)
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=1e-3 * 512 / 512, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6 / 1e-3, by_epoch=True, begin=0, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5, end=300),
]
auto_scale_lr = dict(base_batch_size=512)
