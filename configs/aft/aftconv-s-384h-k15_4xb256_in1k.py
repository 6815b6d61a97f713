# AFT-conv-S, 384 heads, 15x15 kernel, on ImageNet-1k, 224 px, with DeiT's recipe
# (AFT paper Table 7): batch 1024
# (4 GPUs x 256), AdamW lr 1e-3 (5e-4 x 1024/512), weight decay 0.05, 5 warm-up epochs then
# cosine, 300 epochs, RandAugment (m9, mstd 0.5), Mixup 0.8 / CutMix 1.0, label smoothing 0.1,
# random erasing 0.25, drop path 0.1, no EMA [choice: as mmpretrain's DeiT-Ti/S].
# Paper: 81.0 top-1 (23.0M); DeiT-S 79.8.
_base_ = ['./aftconv-s-384h-k11_4xb256_in1k.py']
model = dict(backbone=dict(kernel_size=15))
