# COCO instances with Swin's 3x multi-scale + crop training augmentation (from DETR / Sparse
# R-CNN): with equal chance, resize the short side to one of 480..800 (step 32, long side <= 1333),
# or resize to 400/500/600, crop a random 384-600 box and then resize to 480..800. Source:
# Swin-Transformer-Object-Detection configs/_base_/datasets/coco_instance_detraug.py (AutoAugment
# policies), written for mmdet 3.x as mmdet's configs/swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py
# does (RandomChoice of RandomChoiceResize). The test pipeline stays single-scale 1333x800.
_base_ = ['./coco_instance.py']
backend_args = None
multi_scales = [(short, 1333) for short in range(480, 801, 32)]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [dict(type='RandomChoiceResize', scales=multi_scales, keep_ratio=True)],
            [
                dict(type='RandomChoiceResize', scales=[(400, 1333), (500, 1333), (600, 1333)],
                     keep_ratio=True),
                dict(type='RandomCrop', crop_type='absolute_range', crop_size=(384, 600),
                     allow_negative_crop=True),
                dict(type='RandomChoiceResize', scales=multi_scales, keep_ratio=True),
            ],
        ]),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
