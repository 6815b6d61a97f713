_base_ = ['./upernet_cbvit.py']
model = dict(
    backbone=dict(arch='tiny'),
    decode_head=dict(in_channels=[192, 192, 192, 192], channels=192),
    auxiliary_head=dict(in_channels=192))
