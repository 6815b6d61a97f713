# The CPU demo with a reduced AFT-conv ViT (4 blocks of width 96, 96 heads, 5x5 kernel, patch 8)
# in place of ResNet-18, under the ResNet-18 demo's recipe unchanged (data, crop, batch, AdamW lr,
# schedule): from scratch, so no layer-wise lr decay (a fine-tuning device for pretrained ViTs).
_base_ = ['./upernet_r18-mini_4xb8-120it_synthetic-ade20k-128x128.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='AFTViT',
        arch=dict(embed_dims=96, num_layers=4),
        attn_type='conv',
        num_heads=96,
        kernel_size=5,
        patch_size=8,
        out_indices=(0, 1, 2, 3),
        pyramid_norm_cfg=dict(type='BN', requires_grad=True)),
    decode_head=dict(in_channels=[96, 96, 96, 96], channels=64),
    auxiliary_head=dict(in_channels=96, channels=32))
