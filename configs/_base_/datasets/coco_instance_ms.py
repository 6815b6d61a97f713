# COCO instances with the multi-scale training of Swin's 3x schedule: short side 480-800
# (long side <= 1333); the test pipeline stays single-scale 1333x800.
_base_ = ['./coco_instance.py']
backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomResize', scale=[(1333, 480), (1333, 800)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
