# RetinaNet + FPN as mmdet ships it; vitext backbone configs replace the backbone.
_base_ = ['mmdet::_base_/models/retinanet_r50_fpn.py']
