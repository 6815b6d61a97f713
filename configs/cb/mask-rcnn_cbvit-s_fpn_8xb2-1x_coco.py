# Mask R-CNN 1x on COCO with a CB-ViT-S backbone (4-level pyramid, 384 channels each -> FPN).
_base_ = [
    '../_base_/models/mask-rcnn_r50_fpn.py', '../_base_/datasets/coco_instance.py',
    '../_base_/default_runtime_det.py', '../_base_/schedules/schedule_1x.py'
]
model = dict(
    backbone=dict(
        _delete_=True,
        type='CBViT',
        arch='small',
        drop_path_rate=0.1,
        cb_mode='cb',
        out_indices=(3, 5, 7, 11),
        pyramid_norm_cfg=dict(type='SyncBN', requires_grad=True),
        init_cfg=None),
    neck=dict(in_channels=[384, 384, 384, 384]))
