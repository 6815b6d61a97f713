# Slide-PVT-T on ImageNet-1k, 224 px, with PVT's recipe (DeiT's): batch 1024
# (8 GPUs x 128), AdamW lr 1e-3 (5e-4 x 1024/512), weight decay 0.05, 5 warm-up epochs then
# cosine, 300 epochs, RandAugment, Mixup 0.8 / CutMix 1.0, label smoothing 0.1, random erasing
# 0.25, drop path 0.1, no EMA.
# Papers: Slide-PVT-T 78.0 top-1 (12.2M params, 2.0G FLOPs); PVT-T 75.1.
_base_ = [
    '../_base_/models/slide-pvt_in1k.py',
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    '../_base_/schedules/imagenet_bs1024_adamw_deit.py',
    '../_base_/default_runtime_cls.py'
]
model = dict(backbone=dict(arch='tiny', drop_path_rate=0.1))
train_dataloader = dict(batch_size=128)
val_dataloader = dict(batch_size=128)
test_dataloader = dict(batch_size=128)
