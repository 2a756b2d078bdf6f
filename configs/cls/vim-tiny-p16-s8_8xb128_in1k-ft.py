# Vim-Ti+ : Vim-Ti fine-tuned at patch stride 8 (27 x 27 tokens at 224), the released recipe
# (hustvl/Vim vim/scripts/ft-vim-t.sh): 30 epochs, 8 x 128, --lr 5e-6 (scaled x 1024 / 512 = 1e-5)
# --warmup-lr 1e-5 --min-lr 1e-5 (so warm-up and cosine both sit at 1e-5: a constant 1e-5),
# weight decay 1e-8, drop path 0.0, DeiT augmentation and EMA as in pre-training, fp32. Released: 78.3.
#
# Starts from the stride-16 Vim-Ti weights, head included (the release's --finetune): download
#   https://huggingface.co/hustvl/Vim-tiny-midclstok/resolve/main/vim_t_midclstok_76p1acc.pth
# to checkpoints/ (or set model.init_cfg.checkpoint). pos_embed (1, 197, D) is resized to (1, 730, D) on
# load with the class-token slot kept aside and put back in the middle.
#
#   python tools/test.py configs/cls/vim-tiny-p16-s8_8xb128_in1k-ft.py --checkpoint vim_t_midclstok_ft_78p3acc.pth
_base_ = ['./vim-tiny-p16_8xb128_in1k.py']

model = dict(
    backbone=dict(stride=8, drop_path_rate=0.0),
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/vim_t_midclstok_76p1acc.pth'),
)

optim_wrapper = dict(optimizer=dict(lr=5e-6 * 1024 / 512, weight_decay=1e-8))
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end=30)]
train_cfg = dict(by_epoch=True, max_epochs=30, val_interval=1)
