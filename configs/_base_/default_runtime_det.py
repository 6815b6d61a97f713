# Runtime for detection configs (mmdet scope); `custom_imports` registers vitext's modules.
default_scope = 'mmdet'
custom_imports = dict(imports=['vitext'], allow_failed_imports=False)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # vitext's: crash-safe saves, --resume falls back to the newest complete checkpoint.
    checkpoint=dict(type='AtomicCheckpointHook', interval=1),
    work_dir_lock=dict(type='WorkDirLockHook'),  # one training run per work dir
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='DetVisualizationHook'))
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
