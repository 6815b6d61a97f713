# UperNet on Slide-Swin (docs/models.md#slide-swin): stage maps at strides 4-32 feed UperNet
# (channels 512); auxiliary FCN head on stage 3. Leaf configs set arch, widths and the pre-trained
# weights.
_base_ = ['./upernet_r50.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='SlideSwinTransformer',
        arch='tiny',
        kernel_size=3,
        num_slide_stages=2,
        window_size=7,
        drop_path_rate=0.3,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        # ImageNet weights saved by the public Slide-Swin code (converted on load), e.g.
        # init_cfg=dict(type='Pretrained', checkpoint='pretrain/slide_swin_tiny.pth')
        init_cfg=None),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384, in_index=2),
    test_cfg=dict(mode='whole'))
