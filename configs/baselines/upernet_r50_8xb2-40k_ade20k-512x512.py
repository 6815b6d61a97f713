# UperNet + ResNet-50 under the transformer protocol
# (docs/protocols.md#ade20k-segmentation-512x512), the reference the vitext backbones are compared
# with. Pretrained ImageNet weights: set model.backbone.init_cfg to a local file.
_base_ = [
    '../_base_/models/upernet_r50.py', '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime_seg.py', '../_base_/schedules/schedule_40k.py'
]
