# Runtime for segmentation configs (mmseg scope). `custom_imports` makes every config that
# inherits this one register vitext's modules, also under mmseg's own tools/train.py.
default_scope = 'mmseg'
custom_imports = dict(imports=['vitext'], allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
tta_model = dict(type='SegTTAModel')
