# Semantic FPN (PVT's ADE20K protocol) on Slide-PVT: stage maps at strides 4-32 -> FPN (256)
# -> FPNHead. Leaf configs set arch and the pre-trained weights.
_base_ = ['mmseg::_base_/models/fpn_r50.py']
model = dict(
    pretrained=None,
    data_preprocessor=dict(size=(512, 512)),
    backbone=dict(
        _delete_=True,
        type='SlidePVT',
        arch='tiny',
        kernel_size=3,
        num_slide_stages=2,
        drop_path_rate=0.1,
        out_indices=(0, 1, 2, 3),
        init_cfg=None),
    neck=dict(in_channels=[64, 128, 320, 512], out_channels=256, num_outs=4),
    decode_head=dict(num_classes=150))
