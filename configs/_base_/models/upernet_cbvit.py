# UperNet on CB-ViT (docs/models.md#cb-vit): the ViT's blocks 3/5/7/11 become a 4-level pyramid
# (strides 4-32); auxiliary FCN head on the stride-16 level. Size bases (upernet_cbvit-{ti,s,b}.py)
# set arch, UperNet channels (192/384/512 as in the CB paper) and the pre-trained weights.
_base_ = ['./upernet_r50.py']
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(
        _delete_=True,
        type='CBViT',
        arch='small',
        img_size=224,
        patch_size=16,
        drop_path_rate=0.1,
        cb_mode='cb',
        cb_position='mlp_end',
        out_indices=(3, 5, 7, 11),
        final_norm=False,
        out_pyramid=True,
        pyramid_norm_cfg=norm_cfg,
        with_cp=False,
        # ImageNet ViT/DeiT weights as saved by timm, e.g.
        # init_cfg=dict(type='Pretrained', checkpoint='pretrain/deit_small_patch16_224.pth')
        init_cfg=None),
    decode_head=dict(in_channels=[384, 384, 384, 384], channels=384),
    auxiliary_head=dict(in_channels=384, in_index=2),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
