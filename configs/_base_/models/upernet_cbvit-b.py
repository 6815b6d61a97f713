_base_ = ['./upernet_cbvit.py']
model = dict(
    backbone=dict(arch='base'),
    decode_head=dict(in_channels=[768, 768, 768, 768], channels=512),
    auxiliary_head=dict(in_channels=768))
