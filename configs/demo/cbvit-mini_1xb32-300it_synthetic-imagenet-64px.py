# CPU pretraining demo (README "Pretraining"): the mini CB-ViT of
# upernet_cbvit-mini_4xb8-120it_synthetic-ade20k-128x128.py (4 blocks of width 96, patch 8) as a
# DeiT-style classifier (final norm, class token, linear head) on the synthetic ImageNet-format
# set (python tools/make_synthetic_data.py --which imagenet: 8 classes, 64 px), 300 iterations
# of batch 32. Its checkpoint starts that UperNet's backbone through
# model.backbone.init_cfg=dict(type='Pretrained', checkpoint=...). The ImageNet configs'
# recipe, scaled down: AdamW, warm-up + cosine, label smoothing; no RandAugment/Mixup, which a
# few hundred iterations cannot use.
_base_ = ['../_base_/default_runtime_cls.py']
data_root = 'data/synthetic/imagenet'
num_classes = 8
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='CBViT',
        arch=dict(embed_dims=96, num_layers=4, num_heads=3),
        img_size=128,  # the UperNet's: same position table, loaded as is
        patch_size=8,
        cb_mode='cb',
        out_indices=(3, ),
        out_pyramid=False,
        final_norm=True,
        out_type='cls_token'),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=num_classes,
        in_channels=96,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        topk=(1, 5)))
data_preprocessor = dict(
    num_classes=num_classes,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.5, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs'),
]
# The synthetic set's class names (its meta/classes.txt), given here so that moving data_root
# with --cfg-options moves everything.
classes = ('class_013', 'class_021', 'class_005', 'class_008', 'class_020', 'class_016',
           'class_018', 'class_023')
dataset = dict(type='ImageNet', data_root=data_root, classes=classes)
train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        **dataset, ann_file='meta/train.txt', data_prefix='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**dataset, ann_file='meta/val.txt', data_prefix='val', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator

max_iters = 300
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=False, begin=30, end=max_iters),
]
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=max_iters)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
