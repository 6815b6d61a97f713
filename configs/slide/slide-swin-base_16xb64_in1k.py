# Slide-Swin-B on ImageNet-1k, 224 px, with Swin's recipe (mmpretrain's
# swin-base_16xb64_in1k): batch 1024 (16 GPUs x 64), AdamW lr 1e-3, weight decay 0.05, 20
# warm-up epochs then cosine, 300 epochs, RandAugment (m9, mstd 0.5), Mixup 0.8 / CutMix 1.0,
# label smoothing 0.1, random erasing 0.25, drop path 0.5, gradient clip 5, no EMA.
# Paper: 84.2 top-1 (89M, 15.5G); Swin-B 83.5.
_base_ = ['./slide-swin-tiny_16xb64_in1k.py']
model = dict(backbone=dict(arch='base', drop_path_rate=0.5), head=dict(in_channels=1024))
