# CPU pretraining demo with the reduced Slide-PVT of
# mask-rcnn_slide-pvt-mini_fpn_2xb4-4e_synthetic-coco.py (widths 32/64/96/128, one block per
# stage): last stage after the final norm -> global average pooling -> linear head. Its
# checkpoint starts that Mask R-CNN's backbone (model.backbone.init_cfg).
_base_ = ['./cbvit-mini_1xb32-300it_synthetic-imagenet-64px.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='SlidePVT',
        arch=dict(depths=(1, 1, 1, 1), embed_dims=(32, 64, 96, 128), num_heads=(1, 2, 2, 4)),
        img_size=160,
        drop_path_rate=0.1,
        out_indices=(3, )),
    neck=dict(_delete_=True, type='GlobalAveragePooling'),
    head=dict(in_channels=128))
