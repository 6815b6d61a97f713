"""What ``tools/train.py`` and ``tools/test.py`` do, for segmentation (mmseg), detection (mmdet)
and ImageNet classification (mmpretrain) configs alike: the task is read from the config's
``default_scope``.

Before a runner is built the config is checked (:mod:`vitext.preflight`), so that common mistakes
fail with one message naming the key or path; then the config is completed for the run (label
ranges, CPU distribution, visualisation) and the runner built and run.
"""
import contextlib
import importlib
import json
import logging
import os
import os.path as osp
from typing import Any, Dict, Iterator, Optional, Tuple

import numpy as np
import torch
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log

from .preflight import (ConfigError, check_checkpoint_fits, check_data, check_model_types,
                        check_normalisation, check_optimizer, leaf_datasets, load_config)

def fill_label_ranges(cfg: Config, loaders: Tuple[str, ...]) -> None:
    """Give every ``LoadSegAnnotations`` in the segmentation pipelines of ``loaders`` the data
    set's number of classes (unless the config sets one), so that a label value beyond them is
    refused naming the file. Changes ``cfg``; other tasks' configs are left as they are.

    Args:
        cfg: the run's config.
        loaders: the dataloader keys, e.g. ``('train_dataloader', 'val_dataloader')``.
    """
    if cfg.default_scope != 'mmseg':
        return
    for loader in loaders:
        if cfg.get(loader):
            for key, dataset in leaf_datasets(cfg[loader]['dataset'], f'{loader}.dataset'):
                _fill_label_range(dataset, key)


def _fill_label_range(dataset: dict, key: str) -> None:
    """``num_classes`` of every ``LoadSegAnnotations`` of one dataset's pipeline."""
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


def _file_stamp(path: str) -> Optional[Tuple[int, int]]:
    """(size, modification time in ns) of a local file; None for anything else (URLs)."""
    try:
        stat = os.stat(path)
    except (OSError, TypeError, ValueError):
        return None
    return stat.st_size, stat.st_mtime_ns


def _fitted_checkpoint(cfg: Config, path: str, model_cfg: Optional[dict] = None,
                       hint: str = '') -> Tuple[Any, Optional[Tuple[int, int]]]:
    """:func:`vitext.preflight.check_checkpoint_fits`, and the checkpoint it read with the
    file's stamp (taken before the read, so that a file changed meanwhile is read again)."""
    stamp = _file_stamp(path)
    return check_checkpoint_fits(cfg, path, model_cfg, hint=hint), stamp


@contextlib.contextmanager
def _checkpoint_read_once(path: str, checkpoint: Any,
                          stamp: Optional[Tuple[int, int]]) -> Iterator[None]:
    """While the runner runs, its first read of ``path`` to the CPU (``load_from``) takes
    ``checkpoint``, which the pre-run check read, instead of reading the file a second time,
    provided the file still has ``stamp`` (size and modification time). Other reads, and any
    later one of ``path``, go to the file.

    Args:
        path: the checkpoint's path as the config names it.
        checkpoint: what the pre-run check read from it (on the CPU).
        stamp: :func:`_file_stamp` of the file before that read.
    """
    from mmengine.runner import CheckpointLoader
    own = CheckpointLoader.__dict__['load_checkpoint']  # the classmethod itself
    pending = [checkpoint] if stamp is not None else []

    def load_checkpoint(cls, filename, map_location=None, logger='current'):
        if (pending and filename == path and map_location == 'cpu'
                and _file_stamp(path) == stamp):
            print_log(f'Loads checkpoint {filename} as read by the pre-run check',
                      logger=logger)
            return pending.pop()
        return own.__func__(cls, filename, map_location, logger)

    CheckpointLoader.load_checkpoint = classmethod(load_checkpoint)
    try:
        yield
    finally:
        CheckpointLoader.load_checkpoint = own
        pending.clear()


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
    fill_label_ranges(cfg, ('train_dataloader', 'val_dataloader'))
    read_once = contextlib.nullcontext()
    if cfg.get('load_from') and not load_partial:
        loaded, stamp = _fitted_checkpoint(
            cfg, cfg.load_from, hint='  (tools/train.py --load-partial loads the keys that fit '
            'and trains the rest from their initialisation)')
        read_once = _checkpoint_read_once(cfg.load_from, loaded, stamp)
        del loaded  # the runner takes it over (or it is dropped when the context ends)
    runner = _build_runner(cfg)
    with read_once:
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
    fill_label_ranges(cfg, ('test_dataloader',))
    loaded, stamp = _fitted_checkpoint(cfg, checkpoint, model_cfg)
    read_once = _checkpoint_read_once(checkpoint, loaded, stamp)
    del loaded  # the runner takes it over (or it is dropped when the context ends)
    runner = _build_runner(cfg)
    if out and cfg.default_scope == 'mmdet':  # a pickle of the raw predictions
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=out))
    elif out and not is_seg:  # mmpretrain: a pickle of the predicted scores and labels
        from mmengine.evaluator import DumpResults
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=out))
    with read_once:
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
