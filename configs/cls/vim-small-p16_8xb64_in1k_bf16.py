# Vim-S recipe with bf16 autocast (the release trains in fp32; bf16 needs no loss scaling).
_base_ = ['./vim-small-p16_8xb64_in1k.py']

optim_wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16')
