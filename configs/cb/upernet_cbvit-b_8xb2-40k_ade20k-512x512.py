_base_ = ['./upernet_vit-b_8xb2-40k_ade20k-512x512.py']
model = dict(backbone=dict(cb_mode='cb'))
