# UperNet on Slide-PVT (docs/models.md#slide-pvt): stage maps at strides 4-32 (64/128/320/512
# channels) feed UperNet (channels 512); auxiliary FCN head on stage 3. The recipe is the Slide-Swin
# UperNet one (docs/protocols.md#ade20k-segmentation-512x512); drop path 0.1 is PVT's own downstream
# rate for T and S [choice: neither PVT nor the Slide-Transformer paper trains PVT with UperNet].
# Leaf configs set arch and pre-trained weights.
_base_ = ['./upernet_r50.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='SlidePVT',
        arch='tiny',
        kernel_size=3,
        num_slide_stages=2,
        drop_path_rate=0.1,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        # ImageNet weights of the same Slide-PVT, e.g.
        # init_cfg=dict(type='Pretrained', checkpoint='pretrain/slide_pvt_tiny.pth')
        init_cfg=None),
    decode_head=dict(in_channels=[64, 128, 320, 512]),
    auxiliary_head=dict(in_channels=320, in_index=2),
    test_cfg=dict(mode='whole'))
