_base_ = ['./upernet_vit-s_8xb2-40k_ade20k-512x512.py']
model = dict(backbone=dict(cb_mode='cbs'))
