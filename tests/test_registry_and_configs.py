"""Registration into mmseg/mmdet/mmpretrain and the checks that run before a runner is built."""
import glob
import os.path as osp

import pytest

import vitext
from vitext import registry
from vitext.apis import ConfigError, check_data, check_model_types, load_config

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


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_every_config_loads_and_builds(path):
    cfg = load_config(path)
    assert cfg.custom_imports == dict(imports=['vitext'], allow_failed_imports=False)
    check_model_types(cfg)
    import importlib
    from mmengine.registry import DefaultScope
    models = importlib.import_module(f'{cfg.default_scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = models.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0


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


def test_version():
    assert vitext.__version__
