# The CPU detection demo with a reduced Slide-PVT (widths 32/64/96/128, one block per stage,
# slide attention in stages 1-2) in place of ResNet-18.
_base_ = ['./mask-rcnn_r18-mini_fpn_2xb4-4e_synthetic-coco.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='SlidePVT',
        arch=dict(depths=(1, 1, 1, 1), embed_dims=(32, 64, 96, 128), num_heads=(1, 2, 2, 4)),
        img_size=160,
        drop_path_rate=0.1,
        out_indices=(0, 1, 2, 3)),
    neck=dict(in_channels=[32, 64, 96, 128]))
