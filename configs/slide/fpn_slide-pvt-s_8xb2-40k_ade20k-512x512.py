# Slide-PVT-S + Semantic FPN, ADE20K 40K with PVT's protocol: AdamW lr 1e-4, weight decay
# 1e-4, poly (power 0.9) (paper: 42.47 mIoU).
_base_ = [
    '../_base_/models/fpn_slide-pvt.py', '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime_seg.py', '../_base_/schedules/schedule_40k.py'
]
model = dict(backbone=dict(arch='small'))
optim_wrapper = dict(optimizer=dict(lr=1e-4, weight_decay=1e-4))
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=40000, by_epoch=False),
]
