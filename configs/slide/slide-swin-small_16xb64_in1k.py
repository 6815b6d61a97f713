# Slide-Swin-S on ImageNet-1k, 224 px, with Swin's recipe (mmpretrain's
# swin-small_16xb64_in1k): batch 1024 (16 GPUs x 64), AdamW lr 1e-3, weight decay 0.05, 20
# warm-up epochs then cosine, 300 epochs, RandAugment (m9, mstd 0.5), Mixup 0.8 / CutMix 1.0,
# label smoothing 0.1, random erasing 0.25, drop path 0.3, gradient clip 5, no EMA.
# Paper: 83.7 top-1 (51M, 8.9G); Swin-S 83.0.
_base_ = ['./slide-swin-tiny_16xb64_in1k.py']
model = dict(backbone=dict(arch='small', drop_path_rate=0.3), head=dict(in_channels=768))
