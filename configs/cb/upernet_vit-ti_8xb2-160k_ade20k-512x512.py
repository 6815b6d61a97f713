# Plain ViT-TI baseline (cb_mode='none') for the CB comparison, ADE20K 160k.
_base_ = [
    '../_base_/models/upernet_cbvit-ti.py', '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime_seg.py', '../_base_/schedules/schedule_160k.py'
]
model = dict(backbone=dict(cb_mode='none'))
