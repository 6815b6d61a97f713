# Transformer segmentation protocol (docs/protocols.md#ade20k-segmentation-512x512): AdamW lr 6e-5,
# betas (0.9, 0.999), weight decay 0.01 with none on norms and position tables; linear warm-up 1500
# iters, then poly (power 1.0).
max_iters = 40000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys={
            'norm': dict(decay_mult=0.),
            'pos_embed': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=max_iters, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # vitext's: crash-safe saves, --resume falls back to the newest complete checkpoint.
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=4000,
                    max_keep_ckpts=3, save_best='mIoU'),
    work_dir_lock=dict(type='WorkDirLockHook'),  # one training run per work dir
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
