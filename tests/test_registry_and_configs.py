"""Registration into mmseg/mmdet/mmpretrain and the checks that run before a runner is built."""
import glob
import os.path as osp

import pytest

import vitext
from vitext import registry
from vitext.analysis.complexity import count_parameters
from vitext.preflight import ConfigError, check_data, check_model_types, load_config

from conftest import DEMO_SEG, ROOT

CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p)


def test_registered_in_mmseg_and_idempotent():
    from mmseg.registry import METRICS, TRANSFORMS
    from vitext.data.transforms import LoadSegAnnotations
    assert TRANSFORMS.get('LoadSegAnnotations') is LoadSegAnnotations
    assert METRICS.get('PerClassIoUMetric') is not None
    registry.register_all()  # a second import through custom_imports is harmless
    assert registry.registered_scopes() == ['mmseg', 'mmdet', 'mmpretrain']


def test_name_clash_is_reported():
    from mmseg.registry import TRANSFORMS

    class LoadSegAnnotations:  # a different class under a registered name
        pass

    with pytest.raises(KeyError, match='clashes'):
        registry._register(TRANSFORMS, LoadSegAnnotations)


# Whole-model parameter counts (millions) with their sources, checked within 2 %. Slide-Swin has
# Swin's size (28.3M for T, tests/test_slide_backbones.py), so a Slide-Swin UperNet has the size of
# Swin's UperNet of the same width (Swin paper, Table 3: Swin-S 81M, Swin-B 121M).
PAPER_PARAMS_M = {
    # Slide-Transformer paper, COCO table: Cascade Mask R-CNN 3x Slide-Swin-T.
    'slide/cascade-mask-rcnn_slide-swin-t_fpn_8xb2-3x-ms_coco.py': 86,
    'slide/upernet_slide-swin-s_8xb2-40k_ade20k-512x512.py': 81,
    'slide/upernet_slide-swin-s_8xb2-160k_ade20k-512x512.py': 81,
    'slide/upernet_slide-swin-b_8xb2-40k_ade20k-512x512.py': 121,
    'slide/upernet_slide-swin-b_8xb2-160k_ade20k-512x512.py': 121,
}


def build_model(cfg):
    """The model of ``cfg`` built by its own scope's registry (mmseg or mmdet), on CPU."""
    import importlib
    from mmengine.registry import DefaultScope
    models = importlib.import_module(f'{cfg.default_scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        return models.build(cfg.model)


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_every_config_loads_and_builds(path):
    cfg = load_config(path)
    assert cfg.custom_imports == dict(imports=['vitext'], allow_failed_imports=False)
    check_model_types(cfg)
    params_m = count_parameters(build_model(cfg)) / 1e6
    paper_m = PAPER_PARAMS_M.get(osp.relpath(path, osp.join(ROOT, 'configs')))
    if paper_m is None:
        assert params_m > 0
    else:
        assert abs(params_m / paper_m - 1) < 0.02, (params_m, paper_m)


def test_every_slide_backbone_size_has_upernet_configs():
    """Every Slide-Swin / Slide-PVT size of the model zoo trains as UperNet at 40K and 160K."""
    names = {osp.basename(p) for p in CONFIGS}
    for model in ('slide-swin-t', 'slide-swin-s', 'slide-swin-b', 'slide-pvt-t', 'slide-pvt-s'):
        for iters in ('40k', '160k'):
            assert f'upernet_{model}_8xb2-{iters}_ade20k-512x512.py' in names, (model, iters)


def upstream_config(name):
    """A config shipped inside an OpenMMLab package (``mmdet::...``), read without importing
    the packages it names (mmdet's ConvNeXt configs import mmpretrain)."""
    from mmengine.config import Config
    from mmengine.utils import get_installed_path
    package, path = name.split('::')
    return Config.fromfile(osp.join(get_installed_path(package), '.mim', 'configs', path),
                           import_custom_modules=False)


SWIN_3X = [
    'slide/mask-rcnn_slide-swin-t_fpn_8xb2-3x-ms_coco.py',
    'slide/cascade-mask-rcnn_slide-swin-t_fpn_8xb2-3x-ms_coco.py',
]


@pytest.mark.parametrize('name', SWIN_3X)
def test_swin_3x_recipe_is_swins(name):
    """Swin's COCO 3x recipe (as mmdet ports it for Swin-T): the 480-800 multi-scale + crop
    pipeline, AdamW lr 1e-4 / weight decay 0.05 without decay on norms and position-bias tables,
    36 epochs with steps at 27 and 33. The warm-up stays Swin's own 500 iterations (mmdet's
    port uses 1000)."""
    cfg = load_config(osp.join(ROOT, 'configs', name))
    swin = upstream_config('mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py')
    assert cfg.train_dataloader.dataset.pipeline == swin.train_dataloader.dataset.pipeline
    assert cfg.train_cfg.max_epochs == swin.train_cfg.max_epochs == 36
    assert cfg.param_scheduler[1] == swin.param_scheduler[1]  # MultiStepLR at 27, 33
    assert cfg.param_scheduler[0] == {**swin.param_scheduler[0], 'end': 500}
    assert cfg.optim_wrapper.optimizer == swin.optim_wrapper.optimizer
    keys = cfg.optim_wrapper.paramwise_cfg.custom_keys
    for key in ('norm', 'relative_position_bias_table'):
        assert keys[key] == swin.optim_wrapper.paramwise_cfg.custom_keys[key] == dict(decay_mult=0.)
    assert cfg.train_dataloader.batch_size == 2 and cfg.auto_scale_lr.base_batch_size == 16


def test_cascade_mask_rcnn_3x_has_swins_heads():
    """The 4conv1fc SyncBN box heads with GIoU loss on decoded boxes of Swin's Cascade Mask R-CNN
    3x, which mmdet ships unchanged in its ConvNeXt port; everything else is mmdet's Cascade Mask
    R-CNN."""
    cfg = load_config(osp.join(ROOT, 'configs', SWIN_3X[1]))
    upstream = upstream_config('mmdet::convnext/cascade-mask-rcnn_convnext-t-p4-w7_fpn_'
                               '4conv1fc-giou_amp-ms-crop-3x_coco.py')
    heads = [dict(head, type='ConvFCBBoxHead', num_shared_convs=4, num_shared_fcs=1)
             for head in cfg.model.roi_head.bbox_head]
    assert heads == upstream.model.roi_head.bbox_head
    assert all(head.norm_cfg.type == 'SyncBN' and head.loss_bbox.type == 'GIoULoss'
               and head.reg_decoded_bbox for head in cfg.model.roi_head.bbox_head)
    for key in ('rpn_head', 'train_cfg', 'test_cfg'):
        assert cfg.model[key] == upstream.model[key], key
    assert {k: v for k, v in cfg.model.roi_head.items() if k != 'bbox_head'} == \
        {k: v for k, v in upstream.model.roi_head.items() if k != 'bbox_head'}


def test_unknown_backbone_type_is_named():
    cfg = load_config(DEMO_SEG, {'model.backbone.type': 'ResNetV1x'})
    with pytest.raises(ConfigError, match=r"model.backbone.type='ResNetV1x' is not a "
                                          r"registered mmseg model; did you mean .*'ResNetV1c'"):
        check_model_types(cfg)


def test_missing_data_root_is_named(tmp_path):
    missing = str(tmp_path / 'no_such_dir')
    cfg = load_config(DEMO_SEG, {'train_dataloader.dataset.data_root': missing})
    with pytest.raises(ConfigError, match=r'train_dataloader.dataset.data_root: folder .*'
                                          r'no_such_dir.* does not exist'):
        check_data(cfg, ('train_dataloader',))


def test_missing_image_folder_is_named(ade_root):
    cfg = load_config(DEMO_SEG, {'val_dataloader.dataset.data_root': ade_root,
                                 'val_dataloader.dataset.data_prefix.img_path': 'images/val'})
    with pytest.raises(ConfigError, match=r'data_prefix.img_path: folder .*images/val'):
        check_data(cfg, ('val_dataloader',))


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match='does not exist'):
        load_config(str(tmp_path / 'missing.py'))
    other = tmp_path / 'other_scope.py'
    other.write_text("default_scope = 'mmocr'\n")
    with pytest.raises(ConfigError, match="default_scope='mmocr'"):
        load_config(str(other))


@pytest.mark.parametrize('tool', ['train', 'test'])
@pytest.mark.parametrize('key,value,message', [
    ('std', [0, 0, 0], r'model.data_preprocessor.std\[0\]=0; expected a finite number above 0'),
    ('std', [58.4, float('nan'), 57.4], r'model.data_preprocessor.std\[1\]=nan; expected'),
    ('std', [58.4, 57.1, -57.4], r'model.data_preprocessor.std\[2\]=-57.4; expected'),
    ('mean', [123.7, float('inf'), 103.5], r'model.data_preprocessor.mean\[1\]=inf; expected a '
                                          r'finite number$'),
], ids=['zero std', 'nan std', 'negative std', 'infinite mean'])
def test_normalisation_must_divide_by_finite_positive_numbers(tool, key, value, message,
                                                              tmp_path):
    """std=[0, 0, 0] made every input infinite or NaN, and a test still ended with a score.
    Refused before anything is read (neither the data nor the checkpoint here exist)."""
    from vitext import apis
    options = {f'model.data_preprocessor.{key}': value,
               f'{tool}_dataloader.dataset.data_root': str(tmp_path / 'no_data')}
    with pytest.raises(ConfigError, match=message):
        if tool == 'train':
            apis.train(DEMO_SEG, work_dir=str(tmp_path), cfg_options=options)
        else:
            apis.test(DEMO_SEG, str(tmp_path / 'missing.pth'), work_dir=str(tmp_path),
                      cfg_options=options)


@pytest.mark.parametrize('form', ['absolute', 'climbing'])
def test_vitext_scope_stays_in_the_packaged_configs(form, tmp_path):
    """``vitext::`` took an absolute path as it was, and ``..`` climbed out of the configs
    folder: a file anywhere was read (and run, as configs are) under the package's name."""
    from mmengine.config import Config
    from vitext.config_scope import CONFIG_ROOT
    outside = tmp_path / 'outside.py'
    outside.write_text("default_scope = 'mmseg'\n")
    name = 'vitext::' + (str(outside) if form == 'absolute'
                         else osp.relpath(outside, CONFIG_ROOT))
    config = tmp_path / 'cfg.py'
    config.write_text(f'_base_ = [{name!r}]\n')
    with pytest.raises(ValueError, match=rf"^'{name}': a vitext:: base names a config inside "
                       r"vitext's configs folder \(.*\); expected a path relative to it that "
                       'stays there'):
        Config.fromfile(str(config))


@pytest.mark.parametrize('suffix,text', [
    ('.py', "default_scope = 'mmseg'\nx = []\nfor _ in range(5000):\n    x = [x]\n"),
    ('.json', '{"default_scope": "mmseg", "x": ' + '[' * 5000 + ']' * 5000 + '}'),
    ('.py', "default_scope = 'mmseg'\nx = 1" + ' + 1' * 100000 + '\n'),
], ids=['nested values', 'nested json', 'long expression'])
def test_config_too_deep_to_read_is_named(suffix, text, tmp_path):
    """Python's RecursionError escaped without the file's name."""
    path = tmp_path / f'deep{suffix}'
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"^config '{path}' could not be read: it nests values "
                       r'or expressions deeper than Python reads \(RecursionError\)'):
        load_config(str(path))


def test_version():
    assert vitext.__version__
