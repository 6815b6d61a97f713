# ImageNet classifier of the class-token ViTs (CB-ViT / CBS-ViT / ViT, AFT-full) as DeiT's:
# the class token of the last block after the final LayerNorm (out_type='cls_token') -> linear
# head; label smoothing 0.1, Mixup 0.8 / CutMix 1.0. The leaf configs set the backbone.
model = dict(
    type='ImageClassifier',
    backbone=dict(out_indices=(11, ), out_pyramid=False, final_norm=True, out_type='cls_token'),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=384,
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        cal_acc=False),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))
