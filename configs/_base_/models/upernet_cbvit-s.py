_base_ = ['./upernet_cbvit.py']
model = dict(
    backbone=dict(arch='small'),
    decode_head=dict(in_channels=[384, 384, 384, 384], channels=384),
    auxiliary_head=dict(in_channels=384))
