# Slide-Swin-T on ImageNet-1k, 224 px, with Swin's recipe (mmpretrain's
# swin-tiny_16xb64_in1k): batch 1024 (16 GPUs x 64), AdamW lr 1e-3, weight decay 0.05, 20
# warm-up epochs then cosine, 300 epochs, RandAugment (m9, mstd 0.5), Mixup 0.8 / CutMix 1.0,
# label smoothing 0.1, random erasing 0.25, drop path 0.2, gradient clip 5, no EMA.
# Paper: 82.3 top-1 (29M params, 4.6G FLOPs); Swin-T 81.3, mmpretrain swin-tiny_16xb64_in1k 81.18.
_base_ = [
    '../_base_/models/slide-swin_in1k.py',
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    '../_base_/default_runtime_cls.py'
]
model = dict(backbone=dict(arch='tiny', drop_path_rate=0.2), head=dict(in_channels=768))
optim_wrapper = dict(clip_grad=dict(max_norm=5.0))
