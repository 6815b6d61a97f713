# Mask R-CNN 3x (multi-scale + crop training) on COCO with Slide-Swin-T (paper: 46.8 box AP /
# 42.3 mask AP, 48M params). Swin's own recipe, with Slide-Swin-T in place of Swin-T:
# Swin-Transformer-Object-Detection
# configs/swin/mask_rcnn_swin_tiny_patch4_window7_mstrain_480-800_adamw_3x_coco.py (as mmdet's
# configs/swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py) -- the 480-800 multi-scale + crop
# pipeline (../_base_/datasets/coco_instance_ms.py), AdamW lr 1e-4 weight decay 0.05 with none on
# norms and position-bias tables, 36 epochs with steps at 27 and 33, 500-iter linear warm-up
# (../_base_/schedules/schedule_3x.py); batch 16 (8 GPUs x 2).
_base_ = [
    '../_base_/models/mask-rcnn_r50_fpn.py', '../_base_/datasets/coco_instance_ms.py',
    '../_base_/default_runtime_det.py', '../_base_/schedules/schedule_3x.py'
]
model = dict(
    backbone=dict(
        _delete_=True, type='SlideSwinTransformer', arch='tiny', drop_path_rate=0.2,
        out_indices=(0, 1, 2, 3), init_cfg=None),
    neck=dict(in_channels=[96, 192, 384, 768]))
