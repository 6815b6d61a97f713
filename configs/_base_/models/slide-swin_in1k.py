# ImageNet classifier of Slide-Swin as mmpretrain's Swin: the last stage (after its LayerNorm,
# the backbone's out_norms[3]) -> global average pooling -> linear head; label smoothing 0.1,
# Mixup 0.8 / CutMix 1.0 batch augments.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='SlideSwinTransformer', arch='tiny', out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        cal_acc=False),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))
