"""Side-by-side training runs under one recipe (README's first command): each config is trained
and evaluated with ``vitext.apis.train`` / ``vitext.apis.test``, then tabulated (params, FLOPs,
s/iter, mIoU, mAcc) and plotted (training loss and validation mIoU against iteration).

Each run trains and tests in its own spawned process: runs then share no mmengine global
instances (loggers, visualizers and message hubs are keyed by the run's timestamp) and no
allocator state, and each run's timing starts from a fresh process.

Per run, ``<work_dir>/<name>/`` holds what ``tools/train.py`` and ``tools/test.py`` write
(checkpoints, ``<timestamp>/`` logs with ``vis_data/scalars.json``, ``test_results.json``) and
``run.json``, which points at them. The comparison goes to ``<out_dir>/comparison.{md,json,png}``.
"""
import json
import multiprocessing
import os
import os.path as osp
import statistics
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from .complexity import complexity
from .model_from_config import TensorForward, build_model


@dataclass(frozen=True)
class DemoRun:
    """One row of the comparison: ``name`` (also its folder under the work dir) and ``config``."""
    name: str
    config: str


def run_name(config: str) -> str:
    """The model part of an OpenMMLab config name: ``upernet_cbvit-mini_4xb8-...py`` ->
    ``cbvit-mini``."""
    parts = osp.basename(config).split('_')
    return parts[1] if len(parts) > 2 else osp.splitext(osp.basename(config))[0]


def train_and_test(config: str, work_dir: str, cfg_options: Optional[dict] = None,
                   show_dir: Optional[str] = None) -> dict:
    """Train ``config`` into ``work_dir``, evaluate its last checkpoint there and write
    ``<work_dir>/run.json`` (the training log folder, checkpoint, metrics file, wall times)."""
    from .. import apis
    start = time.perf_counter()
    runner = apis.train(config, work_dir=work_dir, cfg_options=cfg_options)
    train_s = time.perf_counter() - start
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = osp.join(work_dir, osp.basename(f.read().strip()))
    start = time.perf_counter()
    result = apis.test(config, checkpoint, work_dir=work_dir, cfg_options=cfg_options,
                       show_dir=show_dir)
    record = dict(config=config, checkpoint=checkpoint, train_log_dir=runner.log_dir,
                  test_results=result['json'], train_wall_s=round(train_s, 2),
                  test_wall_s=round(time.perf_counter() - start, 2))
    with open(osp.join(work_dir, 'run.json'), 'w') as f:
        json.dump(record, f, indent=2)
    return record


def train_and_test_in_subprocess(run: DemoRun, work_dir: str,
                                 cfg_options: Optional[dict] = None,
                                 show_dir: Optional[str] = None) -> dict:
    """``train_and_test`` in a fresh spawned process; returns its ``run.json`` record."""
    context = multiprocessing.get_context('spawn')
    # Not daemonic: the run's data loaders start worker processes of their own.
    process = context.Process(target=train_and_test, daemon=False,
                              args=(run.config, work_dir, cfg_options, show_dir))
    process.start()
    process.join()
    if process.exitcode != 0:
        raise RuntimeError(f'{run.name}: training or testing {run.config} failed (exit code '
                           f'{process.exitcode}); its output is above and its logs are in '
                           f'{work_dir}/')
    with open(osp.join(work_dir, 'run.json')) as f:
        return json.load(f)


def read_scalars(log_dir: str) -> Tuple[List[dict], List[dict]]:
    """(training entries, validation entries) of mmengine's ``vis_data/scalars.json`` in a
    run's log folder (one JSON object per line; training entries carry ``loss``, validation
    entries ``mIoU``)."""
    path = osp.join(log_dir, 'vis_data', 'scalars.json')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path!r} does not exist: expected the scalars mmengine\'s '
                                'LocalVisBackend writes during training')
    with open(path) as f:
        entries = [json.loads(line) for line in f if line.strip()]
    return ([e for e in entries if 'loss' in e], [e for e in entries if 'mIoU' in e])


def summarise_run(run: DemoRun, record: dict, shape: Sequence[int],
                  cfg_options: Optional[dict] = None) -> Tuple[dict, dict]:
    """(table row, curves) of a finished run. Params and FLOPs are those of
    ``tools/analysis/get_flops.py CONFIG --shape H W`` (the segmentor's whole forward);
    s/iter is the median over the logged windows of mmengine's iteration time (data wait,
    forward, backward, update)."""
    train_log, val_log = read_scalars(record['train_log_dir'])
    if not train_log:
        raise ValueError(f'{run.name}: no training losses in {record["train_log_dir"]}')
    with open(record['test_results']) as f:
        metrics = json.load(f)['metrics']
    model, scope = build_model(run.config, cfg_options=cfg_options)
    counts = complexity(TensorForward(model, scope), shape)
    row = dict(name=run.name, config=run.config, backbone=model.backbone.__class__.__name__,
               params_m=counts['params_m'], flops_g=counts['flops_g'],
               deploy_flops_g=counts['deploy_flops_g'],
               s_per_iter=statistics.median(e['time'] for e in train_log),
               iters=train_log[-1]['step'], mIoU=metrics['mIoU'], mAcc=metrics['mAcc'],
               aAcc=metrics['aAcc'], train_wall_s=record['train_wall_s'],
               test_wall_s=record['test_wall_s'], work_dir=osp.dirname(record['test_results']))
    curves = dict(loss=[[e['step'], e['loss']] for e in train_log],
                  mIoU=[[e['step'], e['mIoU']] for e in val_log])
    return row, curves


COLUMNS = (('model', 'name', '{}'), ('backbone', 'backbone', '{}'),
           ('params (M)', 'params_m', '{:.2f}'), ('FLOPs (G)', 'flops_g', '{:.3f}'),
           ('s/iter', 's_per_iter', '{:.3f}'), ('mIoU', 'mIoU', '{:.2f}'),
           ('mAcc', 'mAcc', '{:.2f}'))


def markdown_table(rows: Sequence[dict], shape: Sequence[int]) -> str:
    header = [title.replace('FLOPs (G)', f'FLOPs (G) @{shape[0]}x{shape[1]}')
              for title, _, _ in COLUMNS]
    lines = ['| ' + ' | '.join(header) + ' |', '|' + ' --- |' * len(COLUMNS)]
    for row in rows:
        lines.append('| ' + ' | '.join(fmt.format(row[key]) for _, key, fmt in COLUMNS) + ' |')
    return '\n'.join(lines) + '\n'


def plot_curves(curves: Dict[str, dict], path: str) -> None:
    """Training loss (left) and validation mIoU (right) against iteration, one line per run."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (loss_ax, miou_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for name, run_curves in curves.items():
        if run_curves['loss']:
            loss_ax.plot(*zip(*run_curves['loss']), label=name)
        if run_curves['mIoU']:
            miou_ax.plot(*zip(*run_curves['mIoU']), marker='o', label=name)
    for ax, ylabel in ((loss_ax, 'training loss'), (miou_ax, 'validation mIoU')):
        ax.set_xlabel('iteration')
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def compare(runs: Sequence[DemoRun], work_dir: str, shape: Sequence[int] = (128, 128),
            cfg_options: Optional[dict] = None, show_dir: Optional[str] = None,
            out_dir: Optional[str] = None) -> dict:
    """Train and test every run in turn under ``work_dir/<name>``, then write
    ``comparison.md`` (the table), ``comparison.json`` (rows, curves, settings) and
    ``comparison.png`` (curves) to ``out_dir`` (default ``work_dir``). Returns the JSON's
    content with the three paths under ``files``."""
    names = [run.name for run in runs]
    if len(set(names)) != len(names):
        raise ValueError(f'run names must be distinct (they name the work folders): {names}')
    for run in runs:
        if not osp.isfile(run.config):
            raise FileNotFoundError(f'{run.name}: config file {run.config!r} does not exist')
    out_dir = out_dir or work_dir
    os.makedirs(out_dir, exist_ok=True)
    rows, curves = [], {}
    start = time.perf_counter()
    for run in runs:
        record = train_and_test_in_subprocess(run, osp.join(work_dir, run.name), cfg_options,
                                              show_dir)
        row, curves[run.name] = summarise_run(run, record, shape, cfg_options)
        rows.append(row)
    result = dict(shape=list(shape), cfg_options=cfg_options or {}, rows=rows, curves=curves,
                  wall_s=round(time.perf_counter() - start, 1))
    files = dict(markdown=osp.join(out_dir, 'comparison.md'),
                 json=osp.join(out_dir, 'comparison.json'),
                 png=osp.join(out_dir, 'comparison.png'))
    with open(files['markdown'], 'w') as f:
        f.write(markdown_table(rows, shape))
    with open(files['json'], 'w') as f:
        json.dump(result, f, indent=2)
    plot_curves(curves, files['png'])
    return dict(result, files=files)


__all__ = ['COLUMNS', 'DemoRun', 'compare', 'markdown_table', 'plot_curves', 'read_scalars',
           'run_name', 'summarise_run', 'train_and_test', 'train_and_test_in_subprocess']
