# CPU demo on the synthetic ADE20K set (tools/make_synthetic_data.py): a reduced-width ResNet-18
# UperNet, 128x128 crops, 120 iterations of batch 8 (about 2.5 min on 2 CPU cores; README's first
# command trains it and three vitext minis under this recipe). Same data pipeline and heads as
# the full ADE20K configs, scaled down; BN instead of SyncBN so it also runs distributed on CPU.
_base_ = [
    '../_base_/models/upernet_r50.py', '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime_seg.py', '../_base_/schedules/schedule_40k.py'
]
data_root = 'data/synthetic/ade/ADEChallengeData2016'
crop_size = (128, 128)
img_scale = (512, 128)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(depth=18, stem_channels=16, base_channels=16, norm_cfg=norm_cfg),
    decode_head=dict(in_channels=[16, 32, 64, 128], channels=64, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=64, channels=32, norm_cfg=norm_cfg))

train_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),  # as ade20k.py
    dict(type='LoadSegAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=img_scale, ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),  # as ade20k.py
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadSegAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=8, num_workers=2,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=2, dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 120
# From scratch in about a hundred iterations: a larger lr than the fine-tuning protocol's 6e-5.
optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=10, end=max_iters, by_epoch=False),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=40, max_keep_ckpts=2, save_best=None))
randomness = dict(seed=0)
