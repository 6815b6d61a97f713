# CB-ViT-S (Context Broadcasting, every block, MLP branch output) on
# ImageNet-1k, 224 px, with DeiT's recipe as the CB paper: batch 1024
# (4 GPUs x 256), AdamW lr 1e-3 (5e-4 x 1024/512), weight decay 0.05, 5 warm-up epochs then
# cosine, 300 epochs, RandAugment (m9, mstd 0.5), Mixup 0.8 / CutMix 1.0, label smoothing 0.1,
# random erasing 0.25, drop path 0.1, no EMA (as mmpretrain's DeiT-Ti/S).
# Baseline: DeiT-S 79.8 (mmpretrain: 80.69).
# The CB paper (arXiv:2210.08457) reports CB on top of DeiT (its top-1 figures are
# not quoted in docs/model_zoo.md).
_base_ = ['./cbvit-ti_4xb256_in1k.py']
model = dict(backbone=dict(arch='small', drop_path_rate=0.1), head=dict(in_channels=384))
