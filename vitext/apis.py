"""What ``tools/train.py`` and ``tools/test.py`` do, for segmentation (mmseg), detection (mmdet)
and ImageNet classification (mmpretrain) configs alike: the task is read from the config's
``default_scope``.

Before a runner is built the config is checked, so that common mistakes fail with one message
naming the key or path: an unknown model/backbone type (with close matches), a missing data root
or annotation file, a checkpoint that is missing, unsafe, unreadable or does not fit the model.
"""
import copy
import difflib
import importlib
import json
import logging
import math
import os
import os.path as osp
import re
from collections import OrderedDict
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log

SCOPES = ('mmseg', 'mmdet', 'mmpretrain')
# Children of `model` that are built from the MODELS registry.
_MODEL_PARTS = ('backbone', 'neck', 'head', 'decode_head', 'auxiliary_head', 'rpn_head',
                'roi_head', 'bbox_head', 'mask_head', 'data_preprocessor')


class ConfigError(ValueError):
    """A config names something that does not exist."""


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    if not osp.isfile(path):
        raise ConfigError(f'config file {path!r} does not exist')
    try:
        cfg = Config.fromfile(path)
    except RecursionError:  # Python's parser or mmengine's conversion; neither names the file
        raise ConfigError(f'config {path!r} could not be read: it nests values or expressions '
                          'deeper than Python reads (RecursionError); expected a config of '
                          'ordinary depth (or one of its bases nests so deep)') from None
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    scope = cfg.get('default_scope')
    if scope not in SCOPES:
        raise ConfigError(f'config {path!r} has default_scope={scope!r}; expected one of '
                          f'{SCOPES} (inherit configs/_base_/default_runtime_seg.py, _det.py or _cls.py)')
    return cfg


def _registry_names(registry) -> List[str]:
    names = []
    while registry is not None:
        names += list(registry.module_dict)
        registry = registry.parent
    return names


def _type_nodes(node: Any, key: str) -> Iterator[Tuple[str, str]]:
    """(config key, type name) of the model and of its registry-built parts."""
    if isinstance(node, dict) and isinstance(node.get('type'), str):
        yield key, node['type']
        for part in _MODEL_PARTS:
            yield from _type_nodes(node.get(part), f'{key}.{part}')
    elif isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            yield from _type_nodes(item, f'{key}[{i}]')


def check_model_types(cfg: Config) -> None:
    """Every type under ``cfg.model`` (model, backbone, neck, heads) must be registered."""
    from mmengine.registry import DefaultScope
    scope = cfg.default_scope
    registry = importlib.import_module(f'{scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(scope):
        registry.import_from_location()  # the scope's own modules, as the runner would
        for key, name in _type_nodes(cfg.model, 'model'):
            if registry.get(name) is None:
                close = difflib.get_close_matches(name, _registry_names(registry), n=3)
                hint = f'; did you mean {" or ".join(map(repr, close))}?' if close else ''
                raise ConfigError(f'{key}.type={name!r} is not a registered {scope} model'
                                  f'{hint}')


def _non_finite_numbers(node: Any, key: str) -> Iterator[Tuple[str, float]]:
    """(config key, value) of every NaN or infinite number in ``node`` (dicts, lists)."""
    if isinstance(node, float) and not math.isfinite(node):
        yield key, node
    elif isinstance(node, dict):
        for name, value in node.items():
            yield from _non_finite_numbers(value, f'{key}.{name}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _non_finite_numbers(value, f'{key}[{i}]')


def check_optimizer(cfg: Config) -> None:
    """The numbers of ``optim_wrapper.optimizer`` (lr, betas, weight decay, ...) must be
    finite: torch refuses a NaN lr without naming the key, and trains with an infinite one
    (every weight becomes NaN at the first step, yet the run ends with a score)."""
    optimizer = (cfg.get('optim_wrapper') or {}).get('optimizer')
    for key, value in _non_finite_numbers(optimizer, 'optim_wrapper.optimizer'):
        raise ConfigError(f'{key}={value} is not a finite number')


def check_normalisation(model_cfg: dict) -> None:
    """The model's ``data_preprocessor`` mean and std must be finite numbers, std above 0: the
    images are divided by std, and a zero or non-finite value gives infinite or NaN inputs that
    train and evaluate to a score without an error.

    Args:
        model_cfg: the config's ``model`` (before a TTA wrapper).
    """
    preprocessor = model_cfg.get('data_preprocessor') or {}
    for name in ('mean', 'std'):
        values = preprocessor.get(name)
        if values is None:  # no normalisation
            continue
        indexed = (enumerate(values) if isinstance(values, (list, tuple))
                   else [(None, values)])
        for i, value in indexed:
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (number and math.isfinite(value) and (name == 'mean' or value > 0)):
                key = f'model.data_preprocessor.{name}' + ('' if i is None else f'[{i}]')
                expected = 'a finite number' + (' above 0 (the images are divided by it)'
                                                 if name == 'std' else '')
                raise ConfigError(f'{key}={value!r}; expected {expected}')


def _leaf_datasets(dataset: dict, key: str) -> Iterator[Tuple[str, dict]]:
    """(config key, config) of every dataset that reads files, inside Concat/Repeat wrappers."""
    if 'datasets' in dataset:  # ConcatDataset
        for i, child in enumerate(dataset['datasets']):
            yield from _leaf_datasets(child, f'{key}.datasets[{i}]')
    elif 'dataset' in dataset:  # RepeatDataset, ClassBalancedDataset, ...
        yield from _leaf_datasets(dataset['dataset'], f'{key}.dataset')
    else:
        yield key, dataset


def _dataset_paths(dataset: dict, key: str) -> Iterator[Tuple[str, str, bool]]:
    """(config key, path, is_dir) of the folders and files a dataset config reads."""
    root = dataset.get('data_root') or ''
    if root:
        yield f'{key}.data_root', root, True
    prefixes = dataset.get('data_prefix') or {}
    if isinstance(prefixes, str):  # mmpretrain: the image folder itself
        yield f'{key}.data_prefix', osp.join(root, prefixes), True
        prefixes = {}
    elif not prefixes and dataset.get('split'):  # mmpretrain's ImageNet(split='train')
        yield f'{key}.split', osp.join(root, dataset['split']), True
    for name, prefix in prefixes.items():
        if prefix:
            yield f'{key}.data_prefix.{name}', osp.join(root, prefix), True
    if dataset.get('ann_file'):
        yield f'{key}.ann_file', osp.join(root, dataset['ann_file']), False


# data_prefix names of the image folder in mmseg and mmdet datasets.
_IMAGE_PREFIXES = ('.img_path', '.img')


def _check_folder_files(key: str, folder: str, needs_files: bool) -> None:
    """A data folder must not hold empty (zero-byte) files, and an image folder must hold
    files at all: mmseg/mmdet fail on either without naming the file or folder."""
    count = 0
    for parent, _, names in os.walk(folder, followlinks=True):
        for name in names:
            path = osp.join(parent, name)
            count += 1
            if osp.getsize(path) == 0:
                raise ConfigError(f'{key}: file {path!r} is empty (0 bytes); replace or '
                                  'remove it')
    if needs_files and count == 0:
        raise ConfigError(f'{key}: folder {folder!r} holds no files; expected the data set\'s '
                          'images')


def check_data(cfg: Config, loaders: Tuple[str, ...]) -> None:
    """The data root, image/label folders and annotation files of ``loaders`` must exist,
    image folders must not be empty and no data file may be empty. Segmentation pipelines'
    ``LoadSegAnnotations`` get the data set's number of classes, so that a label value beyond
    them is refused naming the file. COCO annotation files (of the datasets and of the
    evaluators) are checked by :func:`vitext.data.annotations.check_coco_annotations`."""
    from .data.annotations import check_coco_annotations
    checked = set()  # an evaluator often reads its dataset's annotation file

    def check_annotations(path: str) -> None:
        if osp.abspath(path) not in checked:
            check_coco_annotations(path)
            checked.add(osp.abspath(path))

    for loader in loaders:
        if not cfg.get(loader):
            continue
        for key, dataset in _leaf_datasets(cfg[loader]['dataset'], f'{loader}.dataset'):
            for path_key, path, is_dir in _dataset_paths(dataset, key):
                ok = osp.isdir(path) if is_dir else osp.isfile(path)
                if not ok:
                    what = 'folder' if is_dir else 'file'
                    raise ConfigError(
                        f'{path_key}: {what} {path!r} does not exist. Point it at the data set '
                        f'(e.g. --cfg-options {path_key}=...), or make a synthetic set with '
                        'python tools/make_synthetic_data.py')
                if is_dir and '.data_prefix.' in path_key:
                    _check_folder_files(path_key, path,
                                        needs_files=path_key.endswith(_IMAGE_PREFIXES))
                elif not is_dir and path.endswith('.json') and cfg.default_scope == 'mmdet':
                    check_annotations(path)
            if cfg.default_scope == 'mmseg':
                _set_label_range(dataset, key)
        evaluator_key = loader.replace('_dataloader', '_evaluator')
        for metric in _as_list(cfg.get(evaluator_key)) if cfg.default_scope == 'mmdet' else []:
            ann_file = metric.get('ann_file') if isinstance(metric, dict) else None
            if ann_file:
                if not osp.isfile(ann_file):
                    raise ConfigError(f'{evaluator_key}.ann_file: file {ann_file!r} does not '
                                      'exist')
                check_annotations(ann_file)


def _as_list(node: Any) -> list:
    return list(node) if isinstance(node, (list, tuple)) else [node] if node else []


def _set_label_range(dataset: dict, key: str) -> None:
    """Give every ``LoadSegAnnotations`` of the dataset's pipeline its number of classes
    (unless the config sets one)."""
    from mmengine.registry import DefaultScope
    from mmseg.registry import DATASETS
    classes = (dataset.get('metainfo') or {}).get('classes')
    if classes is None:
        with DefaultScope.overwrite_default_scope('mmseg'):
            DATASETS.import_from_location()
            dataset_cls = DATASETS.get(dataset.get('type'))
        if dataset_cls is None:
            raise ConfigError(f'{key}.type={dataset.get("type")!r} is not a registered mmseg '
                              'dataset')
        classes = dataset_cls.METAINFO.get('classes')
    if not classes:
        return
    for transform in _pipeline_transforms(dataset.get('pipeline') or []):
        if transform.get('type') == 'LoadSegAnnotations':
            transform.setdefault('num_classes', len(classes))


def _pipeline_transforms(node: Any) -> Iterator[dict]:
    """Every transform config in a pipeline, also those nested in wrappers (TestTimeAug)."""
    if isinstance(node, dict):
        if 'type' in node:
            yield node
        for value in node.values():
            yield from _pipeline_transforms(value)
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from _pipeline_transforms(item)


def check_checkpoint_fits(cfg: Config, checkpoint: str, model_cfg: Optional[dict] = None,
                          hint: str = '') -> None:
    """Load ``checkpoint`` into a freshly built ``model_cfg`` (default ``cfg.model``) as the
    runner's ``load_from`` would (its ``state_dict``, a ``module.`` prefix dropped) and fail
    listing every key that does not fit. Done before the runner is built, whose log would bury
    the message; unsafe, unreadable or missing files are refused here too.

    Raises:
        vitext.models.weights.CheckpointMismatchError: the checkpoint does not fit the model.
    """
    from mmengine.registry import DefaultScope
    from mmengine.runner import CheckpointLoader

    from .models.weights import load_state_dict_exactly
    loaded = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu', logger='silent')
    state = loaded.get('state_dict', loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict):
        raise ConfigError(f'checkpoint {checkpoint!r} holds no state dict '
                          f'(a {type(loaded).__name__})')
    revised = OrderedDict((re.sub(r'^module\.', '', k), v) for k, v in state.items())
    revised._metadata = getattr(state, '_metadata', None)
    registry = importlib.import_module(f'{cfg.default_scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = registry.build(copy.deepcopy(model_cfg or cfg.model))
    load_state_dict_exactly(model, revised, f'checkpoint {checkpoint!r}', hint=hint)


def setup_cpu_distributed(cfg: Config, launcher: str) -> None:
    """Distributed runs on a machine without CUDA: gloo instead of NCCL, DDP without device
    ids, BN for SyncBN. mmengine's own initialisation selects a CUDA device unconditionally, so
    the gloo process group is started here; the runner then finds it initialised."""
    if torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise ConfigError(f'--launcher {launcher} needs CUDA devices; on CPU use '
                          '--launcher pytorch (tools/dist_train.sh)')
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    cfg.setdefault('env_cfg', ConfigDict()).setdefault('dist_cfg', ConfigDict())
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or ConfigDict(type='MMDistributedDataParallel')
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper

    def revert_sync_bn(node: Any) -> None:
        if isinstance(node, dict):
            if node.get('type') in ('SyncBN', 'MMSyncBN'):
                node['type'] = 'BN'
            for value in node.values():
                revert_sync_bn(value)
        elif isinstance(node, list):
            for value in node:
                revert_sync_bn(value)

    revert_sync_bn(cfg.model)
    print_log('no CUDA device: distributed run on CPU with the gloo backend, SyncBN -> BN',
              logger='current', level=logging.WARNING)


def _set_work_dir(cfg: Config, config_path: str, work_dir: Optional[str]) -> None:
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def _build_runner(cfg: Config):
    from mmengine.runner import Runner
    if 'runner_type' in cfg:
        registry = importlib.import_module(f'{cfg.default_scope}.registry').RUNNERS
        return registry.build(cfg)
    return Runner.from_cfg(cfg)


def train(config: str, work_dir: Optional[str] = None, resume: bool = False, amp: bool = False,
          cfg_options: Optional[dict] = None, launcher: str = 'none', load_partial: bool = False):
    """Train from a config; returns the runner (its ``work_dir`` holds checkpoints and logs).
    A ``load_from`` checkpoint must fit the model exactly unless ``load_partial`` (then the keys
    that fit are loaded, as mmengine does, and the rest is listed in the log)."""
    cfg = load_config(config, cfg_options)
    cfg.launcher = launcher
    _set_work_dir(cfg, config, work_dir)
    if amp:
        if not torch.cuda.is_available():
            raise ConfigError('--amp needs a CUDA device (mmengine\'s AmpOptimWrapper)')
        if cfg.optim_wrapper.type != 'AmpOptimWrapper':
            if cfg.optim_wrapper.type != 'OptimWrapper':
                raise ConfigError('--amp works with optim_wrapper.type=OptimWrapper, got '
                                  f'{cfg.optim_wrapper.type!r}')
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    cfg.resume = resume
    check_optimizer(cfg)
    check_normalisation(cfg.model)
    if launcher != 'none':
        setup_cpu_distributed(cfg, launcher)
    check_model_types(cfg)
    check_data(cfg, ('train_dataloader', 'val_dataloader'))
    if cfg.get('load_from') and not load_partial:
        check_checkpoint_fits(cfg, cfg.load_from, hint='  (tools/train.py --load-partial loads '
                              'the keys that fit and trains the rest from their initialisation)')
    runner = _build_runner(cfg)
    runner.train()
    return runner


def _enable_visualisation(cfg: Config, show_dir: str) -> None:
    """Paint every test image. A relative ``show_dir`` is taken under the work dir: for
    segmentation the images land in ``<show_dir>/vis_data/vis_image/``, for detection (mmdet's
    hook adds the run's timestamp) in ``<work_dir>/<timestamp>/<show_dir>/``, for
    classification (mmpretrain's hook) in ``<work_dir>/<timestamp>/<show_dir>/``."""
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise ConfigError('--show-dir needs default_hooks.visualization in the config')
    if cfg.default_scope == 'mmpretrain':
        hook['enable'] = True
        hook['out_dir'] = show_dir
        return
    hook['draw'] = True
    hook['interval'] = 1
    if cfg.default_scope == 'mmseg':
        cfg.visualizer['save_dir'] = osp.join(cfg.work_dir, show_dir)
    else:
        hook['test_out_dir'] = show_dir


def test(config: str, checkpoint: str, work_dir: Optional[str] = None, out: Optional[str] = None,
         show_dir: Optional[str] = None, tta: bool = False, cfg_options: Optional[dict] = None,
         launcher: str = 'none', deploy: bool = False) -> Dict[str, Any]:
    """Evaluate ``checkpoint``; returns the metrics and writes them (with per-class values for
    segmentation) to ``<work_dir>/test_results.json``. ``deploy``: re-parameterise the model
    (``SwitchToDeployHook``) after loading the checkpoint."""
    cfg = load_config(config, cfg_options)
    cfg.launcher = launcher
    _set_work_dir(cfg, config, work_dir)
    cfg.load_from = checkpoint
    model_cfg = cfg.model  # the model the checkpoint must fit (before a TTA wrapper)
    if launcher != 'none':
        setup_cpu_distributed(cfg, launcher)
    if show_dir:
        _enable_visualisation(cfg, show_dir)
    if deploy:
        cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [dict(type='SwitchToDeployHook')]
    if tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise ConfigError('--tta needs tta_model and tta_pipeline in the config')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    is_seg = cfg.default_scope == 'mmseg'
    if out and is_seg:  # mmseg: a folder of predicted label PNGs
        cfg.test_evaluator['output_dir'] = out
        cfg.test_evaluator['keep_results'] = True
    check_model_types(cfg)
    check_normalisation(model_cfg)
    check_data(cfg, ('test_dataloader',))
    check_checkpoint_fits(cfg, checkpoint, model_cfg)
    runner = _build_runner(cfg)
    if out and cfg.default_scope == 'mmdet':  # a pickle of the raw predictions
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=out))
    elif out and not is_seg:  # mmpretrain: a pickle of the predicted scores and labels
        from mmengine.evaluator import DumpResults
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=out))
    metrics = runner.test()
    if not metrics:
        print_log('the evaluator returned no metrics (see the errors above, e.g. no '
                  'predictions at all)', logger='current', level=logging.WARNING)
    result: Dict[str, Any] = dict(config=config, checkpoint=checkpoint,
                                  metrics={k: _to_builtin(v) for k, v in metrics.items()})
    for metric in runner.test_evaluator.metrics:
        per_class = getattr(metric, 'per_class', None)
        if per_class is not None:
            result['per_class'] = per_class
    from mmengine.dist import is_main_process
    if is_main_process():
        path = osp.join(cfg.work_dir, 'test_results.json')
        os.makedirs(cfg.work_dir, exist_ok=True)
        with open(path, 'w') as f:
            json.dump(result, f, indent=2)
        print_log(f'metrics written to {path}', logger='current')
        result['json'] = path
    return result


def _to_builtin(value: Any) -> Any:
    """A metric value as a Python number for JSON: float32 values (mmseg's rounded summary under
    numpy >= 2) are written as the shortest decimal that reads back as them in float32 (9.06, not
    its float64 expansion 9.0600004196167).

    Args:
        value: a Python, numpy or torch scalar.
    """
    if isinstance(value, torch.Tensor) and value.dtype in (torch.float32, torch.float64):
        value = value.numpy(force=True)[()]
    if isinstance(value, np.floating):
        return float(str(value))
    try:
        return value.item()  # numpy / torch scalars
    except AttributeError:
        return value
