# COCO boxes only (RetinaNet), mmdet's standard 1333x800 pipeline.
_base_ = ['mmdet::_base_/datasets/coco_detection.py']
