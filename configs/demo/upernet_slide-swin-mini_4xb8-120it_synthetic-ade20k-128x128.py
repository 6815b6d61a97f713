# The CPU demo with a reduced Slide-Swin (width 32, depths 1/1/2/1, slide attention in stages
# 1-2, 4x4 windows after) in place of ResNet-18, under the ResNet-18 demo's recipe unchanged
# (data, crop, batch, AdamW lr, schedule; no stochastic depth, as the other demo backbones). Test
# with `tools/test.py ... --deploy` to run the re-parameterised (merged shift convs) model.
_base_ = ['./upernet_r18-mini_4xb8-120it_synthetic-ade20k-128x128.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='SlideSwinTransformer',
        arch=dict(embed_dims=32, depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8)),
        window_size=4,
        drop_path_rate=0.,
        out_indices=(0, 1, 2, 3)),
    decode_head=dict(in_channels=[32, 64, 128, 256], channels=64),
    auxiliary_head=dict(in_channels=128, channels=32))
