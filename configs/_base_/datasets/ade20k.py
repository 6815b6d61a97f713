# ADE20K, 512x512 crops (docs/protocols.md#ade20k-segmentation-512x512): resize (2048, 512) ratio
# 0.5-2.0, cat_max_ratio 0.75, flip, photometric distortion; single-scale test at (2048, 512), TTA =
# multi-scale + flip.
# Labels are loaded by vitext's LoadSegAnnotations, which names a corrupt/mismatched label file.
# Images are read as stored, ignoring a JPEG's EXIF orientation tag: ADE20K's label maps are drawn
# on the stored pixels, and mmcv's default (color_type='color') would turn a tagged image against
# its label.
dataset_type = 'ADE20KDataset'
data_root = 'data/ade/ADEChallengeData2016'
crop_size = (512, 512)
img_scale = (2048, 512)
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(type='LoadSegAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=img_scale, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    # Labels are loaded after Resize: evaluation is at the original resolution.
    dict(type='LoadSegAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale_factor=r, keep_ratio=True) for r in img_ratios],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal')
            ],
            [dict(type='LoadSegAnnotations')],
            [dict(type='PackSegInputs')],
        ])
]
# 8 GPUs x 2 images = batch 16.
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# Same numbers as mmseg's IoUMetric; per-class values are kept for tools/test.py's JSON.
val_evaluator = dict(type='PerClassIoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
