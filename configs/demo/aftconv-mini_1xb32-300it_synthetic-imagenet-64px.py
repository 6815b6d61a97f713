# CPU pretraining demo with the reduced AFT-conv ViT of
# upernet_aftconv-mini_4xb8-120it_synthetic-ade20k-128x128.py (4 blocks of width 96, 96 heads,
# 5x5 kernel, patch 8): the last block after the final norm -> global average pooling -> linear
# head, as the AFT paper's classifier. Its checkpoint starts that UperNet's backbone
# (model.backbone.init_cfg); AFT-conv has no position table, so the 64 px pretraining transfers
# to any crop size.
_base_ = ['./cbvit-mini_1xb32-300it_synthetic-imagenet-64px.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='AFTViT',
        arch=dict(embed_dims=96, num_layers=4),
        attn_type='conv',
        num_heads=96,
        kernel_size=5,
        patch_size=8,
        out_indices=(3, ),
        out_pyramid=False,
        final_norm=True),
    neck=dict(_delete_=True, type='GlobalAveragePooling'),
    head=dict(in_channels=96))
