# Mask R-CNN 3x (multi-scale training) on COCO with Slide-Swin-T (paper: 46.8 box AP / 42.3
# mask AP, 48M params).
_base_ = [
    '../_base_/models/mask-rcnn_r50_fpn.py', '../_base_/datasets/coco_instance_ms.py',
    '../_base_/default_runtime_det.py', '../_base_/schedules/schedule_3x.py'
]
model = dict(
    backbone=dict(
        _delete_=True, type='SlideSwinTransformer', arch='tiny', drop_path_rate=0.2,
        out_indices=(0, 1, 2, 3), init_cfg=None),
    neck=dict(in_channels=[96, 192, 384, 768]))
optim_wrapper = dict(optimizer=dict(weight_decay=0.05))
