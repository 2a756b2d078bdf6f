# Vim-S+ : Vim-S fine-tuned at patch stride 8, the released recipe (hustvl/Vim vim/scripts/ft-vim-s.sh):
# 30 epochs, 8 x 128, constant lr 1e-5 (--lr 5e-6 x 1024 / 512, --warmup-lr 1e-5 --min-lr 1e-5), weight decay
# 1e-8, drop path 0.0 (the ft script sets 0.0, not pre-training's 0.05), DeiT augmentation, EMA, fp32.
# Released: 81.6.
#
# Starts from the stride-16 Vim-S weights, head included: download
#   https://huggingface.co/hustvl/Vim-small-midclstok/resolve/main/vim_s_midclstok_80p5acc.pth
# to checkpoints/ (or set model.init_cfg.checkpoint); pos_embed is resized with the mid class-token slot kept.
_base_ = ['./vim-small-p16_8xb64_in1k.py']

model = dict(
    backbone=dict(stride=8, drop_path_rate=0.0),
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/vim_s_midclstok_80p5acc.pth'),
)

train_dataloader = dict(batch_size=128)
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=5e-6 * 1024 / 512, weight_decay=1e-8))
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end=30)]
train_cfg = dict(by_epoch=True, max_epochs=30, val_interval=1)
auto_scale_lr = dict(base_batch_size=1024)
