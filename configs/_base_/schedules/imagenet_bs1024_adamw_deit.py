# DeiT's recipe (DeiT paper; the AFT and PVT papers follow it): AdamW, lr 5e-4 x batch/512
# (1e-3 at batch 1024; mmengine's auto_scale_lr rescales for other batches with
# --auto-scale-lr), weight decay 0.05 (none on norms, biases, class token and position tables),
# linear warm-up 5 epochs then cosine to 1e-5, 300 epochs. mmpretrain's Swin schedule with
# DeiT's 5 warm-up epochs (mmpretrain's DeiT configs use 20).
_base_ = ['mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py']
optim_wrapper = dict(
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            '.cls_token': dict(decay_mult=0.0),
            '.pos_embed': dict(decay_mult=0.0),
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5),
]
