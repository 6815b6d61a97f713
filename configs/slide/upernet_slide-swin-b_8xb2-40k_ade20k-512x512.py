# Slide-Swin-B + UperNet, ADE20K 40K (Swin's UperNet recipe for Swin-B, drop path 0.3; the
# Slide-Transformer paper reports UperNet for Slide-Swin-T/S only; Swin-B + UperNet is 121M).
_base_ = [
    '../_base_/models/upernet_slide-swin.py', '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime_seg.py', '../_base_/schedules/schedule_40k.py'
]
model = dict(
    backbone=dict(arch='base', drop_path_rate=0.3),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512))
