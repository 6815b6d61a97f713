# UperNet on AFT-conv ViT (docs/models.md#aft-conv): blocks 3/5/7/11 become a 4-level pyramid
# (strides 4-32); auxiliary FCN head on the stride-16 level. Leaf configs set arch, heads and
# kernel.
_base_ = ['./upernet_r50.py']
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(
        _delete_=True,
        type='AFTViT',
        arch='small',
        attn_type='conv',
        num_heads=384,
        kernel_size=11,
        patch_size=16,
        drop_path_rate=0.1,
        out_indices=(3, 5, 7, 11),
        final_norm=False,
        out_pyramid=True,
        pyramid_norm_cfg=norm_cfg,
        with_cp=False,
        # An ImageNet AFT-conv classification checkpoint of the same model, e.g.
        # init_cfg=dict(type='Pretrained', checkpoint='pretrain/aft-conv-small-384-11.pth')
        init_cfg=None),
    decode_head=dict(in_channels=[384, 384, 384, 384], channels=512),
    auxiliary_head=dict(in_channels=384, in_index=2),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
