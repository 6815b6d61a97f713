# AFT-conv tiny (d 192, 192 heads, 11x11 kernel) + UperNet, ADE20K 160k.
_base_ = ['./upernet_aftconv-s-384h-k11_8xb2-160k_ade20k-512x512.py']
model = dict(
    backbone=dict(arch='tiny', num_heads=192),
    decode_head=dict(in_channels=[192, 192, 192, 192]),
    auxiliary_head=dict(in_channels=192))
