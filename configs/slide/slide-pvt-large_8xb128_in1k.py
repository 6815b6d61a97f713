# Slide-PVT-L on ImageNet-1k, 224 px, with PVT's recipe (DeiT's): batch 1024
# (8 GPUs x 128), AdamW lr 1e-3 (5e-4 x 1024/512), weight decay 0.05, 5 warm-up epochs then
# cosine, 300 epochs, RandAugment, Mixup 0.8 / CutMix 1.0, label smoothing 0.1, random erasing
# 0.25, drop path 0.3, no EMA.
# Papers: Slide-PVT-L not reported; PVT-L 81.7.
_base_ = ['./slide-pvt-tiny_8xb128_in1k.py']
model = dict(backbone=dict(arch='large', drop_path_rate=0.3))
