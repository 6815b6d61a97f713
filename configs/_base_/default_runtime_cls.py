# Runtime for ImageNet classification configs (mmpretrain scope): mmpretrain's own runtime
# (hooks, UniversalVisualizer, checkpoint every epoch) plus `custom_imports`, which registers
# vitext's backbones into mmpretrain's registry, also under mmpretrain's own tools/train.py.
_base_ = ['mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['vitext'], allow_failed_imports=False)
