# Cascade Mask R-CNN + FPN with Swin's box heads for its 3x COCO recipe: each of the 3 stages is
# a 4-conv (256 ch, SyncBN) + 1-fc (1024) box head, class-specific regression of decoded boxes
# with GIoU loss (weight 10). Source: Swin-Transformer-Object-Detection
# configs/swin/cascade_mask_rcnn_swin_tiny_patch4_window7_mstrain_480-800_giou_4conv1f_adamw_3x_coco.py
# (the same heads as mmdet's configs/convnext/cascade-mask-rcnn_convnext-t-p4-w7_fpn_4conv1fc-giou_
# amp-ms-crop-3x_coco.py). Leaf configs set the backbone and neck widths.
_base_ = ['./cascade-mask-rcnn_r50_fpn.py']
model = dict(
    roi_head=dict(bbox_head=[
        dict(
            type='Shared4Conv1FCBBoxHead',
            in_channels=256,
            conv_out_channels=256,
            fc_out_channels=1024,
            roi_feat_size=7,
            num_classes=80,
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                            target_stds=stage_stds),
            reg_class_agnostic=False,
            reg_decoded_bbox=True,
            norm_cfg=dict(type='SyncBN', requires_grad=True),
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='GIoULoss', loss_weight=10.0))
        # Box-delta scales of the three stages, as in every Cascade R-CNN config.
        for stage_stds in ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1],
                           [0.033, 0.033, 0.067, 0.067])
    ]))
