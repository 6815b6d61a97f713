# Slide-Swin-S + UperNet, ADE20K 40K (paper: 48.46 mIoU (160K)).
_base_ = [
    '../_base_/models/upernet_slide-swin.py', '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime_seg.py', '../_base_/schedules/schedule_40k.py'
]
model = dict(backbone=dict(arch='small', drop_path_rate=0.3))
