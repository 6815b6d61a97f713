# Mask R-CNN + FPN as mmdet ships it; vitext backbone configs replace the backbone and set
# neck.in_channels.
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py']
