# Slide-PVT-T + UperNet, ADE20K 160K (the paper reports Slide-PVT with Semantic FPN only:
# fpn_slide-pvt-t_8xb2-40k_ade20k-512x512.py).
_base_ = [
    '../_base_/models/upernet_slide-pvt.py', '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime_seg.py', '../_base_/schedules/schedule_160k.py'
]
model = dict(backbone=dict(arch='tiny'))
