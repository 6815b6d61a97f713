# AFT-conv small (d 384, 384 heads, 11x11 kernel) + UperNet, ADE20K 40k.
_base_ = [
    '../_base_/models/upernet_aftvit.py', '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime_seg.py', '../_base_/schedules/schedule_40k.py'
]
