# ImageNet classifier of Slide-PVT: the last stage after the final LayerNorm -> global average
# pooling -> linear head [choice: PVT-v1 classifies its stage-4 class token; Slide-PVT has no
# class token, so it pools like the other Slide models]; DeiT's label smoothing and Mixup/CutMix.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='SlidePVT', arch='tiny', drop_path_rate=0.1, out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=512,
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        cal_acc=False),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))
