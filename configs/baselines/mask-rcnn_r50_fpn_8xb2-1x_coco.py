# Mask R-CNN + FPN + ResNet-50, 1x, the detection reference for the vitext backbones.
_base_ = [
    '../_base_/models/mask-rcnn_r50_fpn.py', '../_base_/datasets/coco_instance.py',
    '../_base_/default_runtime_det.py', '../_base_/schedules/schedule_1x.py'
]
