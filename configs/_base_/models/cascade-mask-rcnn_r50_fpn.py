# Cascade Mask R-CNN + FPN as mmdet ships it; vitext backbone configs replace the backbone.
_base_ = ['mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py']
