"""Checks made before a run starts (``vitext.apis`` runs them before it builds a runner, and the
analysis tools before they build a model), so that common mistakes fail with one message naming
the key or path: an unknown model/backbone type (with close matches), a missing data root or
annotation file, an empty data folder, a non-finite optimizer or normalisation setting, a
checkpoint that is missing, unsafe, unreadable or does not fit the model.

The checks read the config and never change it.
"""
import copy
import difflib
import importlib
import math
import os
import os.path as osp
import re
from collections import OrderedDict
from itertools import islice
from typing import Any, Iterator, List, Optional, Tuple

from mmengine.config import Config

SCOPES = ('mmseg', 'mmdet', 'mmpretrain')
# Children of `model` that are built from the MODELS registry.
_MODEL_PARTS = ('backbone', 'neck', 'head', 'decode_head', 'auxiliary_head', 'rpn_head',
                'roi_head', 'bbox_head', 'mask_head', 'data_preprocessor')


class ConfigError(ValueError):
    """A config names something that does not exist."""


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config and check its ``default_scope`` (the task: mmseg, mmdet or mmpretrain).

    Args:
        path: the config file.
        cfg_options: ``--cfg-options`` settings merged into it.
    """
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


def leaf_datasets(dataset: dict, key: str) -> Iterator[Tuple[str, dict]]:
    """(config key, config) of every dataset that reads files, inside Concat/Repeat wrappers."""
    if 'datasets' in dataset:  # ConcatDataset
        for i, child in enumerate(dataset['datasets']):
            yield from leaf_datasets(child, f'{key}.datasets[{i}]')
    elif 'dataset' in dataset:  # RepeatDataset, ClassBalancedDataset, ...
        yield from leaf_datasets(dataset['dataset'], f'{key}.dataset')
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


# Files of a data folder whose size is looked at. Zero-byte files (a copy or extraction that
# stopped, placeholders) show among a folder's first files; stat-ing every file at each start
# (118k images for COCO) costs more than the loaders' own reads name a bad file later.
_FILES_CHECKED = 1000


def _files_under(folder: str) -> Iterator[str]:
    """Paths of the files under ``folder`` (links followed), lazily in directory order: a
    caller that stops early does not list the rest."""
    subfolders = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir():
                subfolders.append(entry.path)
            else:
                yield entry.path
    for subfolder in subfolders:
        yield from _files_under(subfolder)


def _check_folder_files(key: str, folder: str, needs_files: bool) -> None:
    """An image folder must hold files, and none of a data folder's first ``_FILES_CHECKED``
    files may be empty (zero bytes): mmseg/mmdet fail on either without naming the file or
    folder.

    Args:
        key: the config key that names ``folder`` (for the message).
        folder: an image or label folder.
        needs_files: the folder must hold at least one file (image folders).
    """
    count = 0
    for count, path in enumerate(islice(_files_under(folder), _FILES_CHECKED), start=1):
        if osp.getsize(path) == 0:
            raise ConfigError(f'{key}: file {path!r} is empty (0 bytes); replace or '
                              'remove it')
    if needs_files and count == 0:
        raise ConfigError(f'{key}: folder {folder!r} holds no files; expected the data set\'s '
                          'images')


def check_data(cfg: Config, loaders: Tuple[str, ...]) -> None:
    """The data root, image/label folders and annotation files of ``loaders`` must exist,
    image folders must not be empty and a folder's first files must not be empty (see
    :func:`_check_folder_files`). COCO annotation files (of the datasets and of the
    evaluators) are checked by :func:`vitext.data.annotations.check_coco_annotations`.

    Args:
        cfg: the run's config (read, not changed).
        loaders: the dataloader keys to check, e.g. ``('val_dataloader',)``.
    """
    from .data.annotations import check_coco_annotations
    checked = set()  # an evaluator often reads its dataset's annotation file

    def check_annotations(path: str) -> None:
        if osp.abspath(path) not in checked:
            check_coco_annotations(path)
            checked.add(osp.abspath(path))

    for loader in loaders:
        if not cfg.get(loader):
            continue
        for key, dataset in leaf_datasets(cfg[loader]['dataset'], f'{loader}.dataset'):
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


def check_checkpoint_fits(cfg: Config, checkpoint: str, model_cfg: Optional[dict] = None,
                          hint: str = '') -> Any:
    """Load ``checkpoint`` into a freshly built ``model_cfg`` (default ``cfg.model``) as the
    runner's ``load_from`` would (its ``state_dict``, a ``module.`` prefix dropped) and fail
    listing every key that does not fit. Done before the runner is built, whose log would bury
    the message; unsafe, unreadable or missing files are refused here too.

    Returns:
        The checkpoint as read (on the CPU), for the runner to take instead of reading the file
        again.

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
    return loaded
