# Plain ViT-S baseline (cb_mode='none') for the CB comparison, ADE20K 40k.
_base_ = [
    '../_base_/models/upernet_cbvit-s.py', '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime_seg.py', '../_base_/schedules/schedule_40k.py'
]
model = dict(backbone=dict(cb_mode='none'))
