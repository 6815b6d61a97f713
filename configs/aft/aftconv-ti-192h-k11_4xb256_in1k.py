# AFT-conv-Ti, 192 heads, 11x11 kernel, on ImageNet-1k, 224 px, with DeiT's recipe
# (AFT paper Table 7): batch 1024
# (4 GPUs x 256), AdamW lr 1e-3 (5e-4 x 1024/512), weight decay 0.05, 5 warm-up epochs then
# cosine, 300 epochs, RandAugment (m9, mstd 0.5), Mixup 0.8 / CutMix 1.0, label smoothing 0.1,
# random erasing 0.25, drop path 0.0, no EMA [choice: as mmpretrain's DeiT-Ti/S].
# Paper: 74.8 top-1 (5.9M); DeiT-Ti 72.2.
_base_ = [
    '../_base_/models/aftconv_in1k.py',
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    '../_base_/schedules/imagenet_bs1024_adamw_deit.py',
    '../_base_/default_runtime_cls.py'
]
model = dict(
    backbone=dict(arch='tiny', num_heads=192, kernel_size=11, drop_path_rate=0.0),
    head=dict(in_channels=192))
train_dataloader = dict(batch_size=256)
