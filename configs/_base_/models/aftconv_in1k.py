# ImageNet classifier of AFT-conv (AFT paper Table 7, DeiT recipe): no class token, so the last
# block after the final LayerNorm is averaged (one stride-16 map -> global average pooling) ->
# linear head; label smoothing 0.1, Mixup 0.8 / CutMix 1.0.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='AFTViT',
        arch='small',
        attn_type='conv',
        num_heads=384,
        kernel_size=11,
        out_indices=(11, ),
        out_pyramid=False,
        final_norm=True),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=384,
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        cal_acc=False),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))
