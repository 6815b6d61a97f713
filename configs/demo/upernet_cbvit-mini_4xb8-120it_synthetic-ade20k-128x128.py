# The CPU demo with a reduced CB-ViT (4 blocks of width 96, patch 8 for a 16x16 grid at 128x128)
# in place of ResNet-18; also runs CBS / plain ViT with model.backbone.cb_mode=cbs|none. The
# ResNet-18 demo's recipe unchanged (data, crop, batch, AdamW lr, schedule): from scratch, so no
# layer-wise lr decay (a fine-tuning device for pretrained ViTs).
_base_ = ['./upernet_r18-mini_4xb8-120it_synthetic-ade20k-128x128.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='CBViT',
        arch=dict(embed_dims=96, num_layers=4, num_heads=3),
        img_size=128,
        patch_size=8,
        cb_mode='cb',
        out_indices=(0, 1, 2, 3),
        pyramid_norm_cfg=dict(type='BN', requires_grad=True)),
    decode_head=dict(in_channels=[96, 96, 96, 96], channels=64),
    auxiliary_head=dict(in_channels=96, channels=32))
