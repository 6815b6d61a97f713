# RetinaNet 1x on COCO with Slide-PVT-T.
_base_ = [
    '../_base_/models/retinanet_r50_fpn.py', '../_base_/datasets/coco_detection.py',
    '../_base_/default_runtime_det.py', '../_base_/schedules/schedule_1x.py'
]
model = dict(
    backbone=dict(
        _delete_=True, type='SlidePVT', arch='tiny', drop_path_rate=0.1,
        out_indices=(0, 1, 2, 3), init_cfg=None),
    neck=dict(in_channels=[64, 128, 320, 512], start_level=1, add_extra_convs='on_input'))
