# Mask R-CNN 1x on COCO with an AFT-conv small backbone (4-level pyramid -> FPN). AFT-conv is
# fully convolutional, so COCO's variable image sizes need no position-table resizing.
_base_ = [
    '../_base_/models/mask-rcnn_r50_fpn.py', '../_base_/datasets/coco_instance.py',
    '../_base_/default_runtime_det.py', '../_base_/schedules/schedule_1x.py'
]
model = dict(
    backbone=dict(
        _delete_=True,
        type='AFTViT',
        arch='small',
        attn_type='conv',
        num_heads=384,
        kernel_size=11,
        drop_path_rate=0.1,
        out_indices=(3, 5, 7, 11),
        pyramid_norm_cfg=dict(type='SyncBN', requires_grad=True),
        init_cfg=None),
    neck=dict(in_channels=[384, 384, 384, 384]))
