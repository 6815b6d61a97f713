# AFT-full-S (class token and position table as DeiT; w = U V^T, d' = 128) on
# ImageNet-1k, 224 px, with DeiT's recipe (AFT paper Table 7): batch 1024
# (4 GPUs x 256), AdamW lr 1e-3 (5e-4 x 1024/512), weight decay 0.05, 5 warm-up epochs then
# cosine, 300 epochs, RandAugment (m9, mstd 0.5), Mixup 0.8 / CutMix 1.0, label smoothing 0.1,
# random erasing 0.25, drop path 0.1, no EMA [choice: as mmpretrain's DeiT-Ti/S].
# Paper: 79.8 top-1 (22.6M); DeiT-S 79.8.
_base_ = ['./aftfull-ti_4xb256_in1k.py']
model = dict(backbone=dict(arch='small', drop_path_rate=0.1), head=dict(in_channels=384))
