"""Robustness suite for segmentation (and, for occlusion/corruptions, detection) checkpoints.

Settings are evaluated on the same test images: ``clean`` first, then occlusion, FGSM/PGD at
each epsilon (segmentation only) and each corruption at each severity. Every finished setting is
written to ``<work_dir>/robustness.json`` at once (atomically: a kill leaves the previous
version), so a killed run resumes where it stopped. The file records what its results are of
(checkpoint path and SHA-256 of its content; a hash of the config; the attack/corruption
parameters); a run with anything else refuses to reuse or overwrite them.
Reports: the metrics and the relative drop from clean per setting; for corruptions also mPC (mean
over types and severities) and rPC (mPC / clean); a markdown table and a PNG plot.
"""
import copy
import hashlib
import json
import os
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.utils import ProgressBar

from ..atomic_files import atomic_write
from .attacks import fgsm_attack, pgd_attack
from .corruptions import CORRUPTIONS, SEVERITIES

SUITES = ('occlusion', 'fgsm', 'pgd', 'corruptions')


class ResultsMismatchError(RuntimeError):
    """The work dir holds robustness results of another checkpoint, config or parameters."""


def file_sha256(path: str) -> str:
    """SHA-256 of the content of the file ``path``, read in pieces (checkpoints are large).

    Args:
        path: the file.
    """
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for piece in iter(lambda: f.read(1 << 20), b''):
            digest.update(piece)
    return digest.hexdigest()


def run_identity(cfg: Config, checkpoint: str, params: dict) -> dict:
    """What a run's results depend on: the checkpoint file (path, SHA-256 of its content), the
    config (SHA-256 of its content, data paths included) and the suite's parameters. The
    checkpoint is known by its content: other weights of the same size under the same path,
    their modification time set back, are another checkpoint."""
    config_text = json.dumps(cfg.to_dict(), sort_keys=True, default=repr)
    return dict(checkpoint=osp.abspath(checkpoint), checkpoint_sha256=file_sha256(checkpoint),
                config_sha256=hashlib.sha256(config_text.encode()).hexdigest(), params=params)


def load_saved_results(path: str, identity: dict) -> Dict[str, dict]:
    """The finished settings in ``path`` (robustness.json) if they are of this run, {} if there
    is no file; raises :class:`ResultsMismatchError` if they are of another run (or ``path``
    is a directory)."""
    if osp.isdir(path):
        raise ResultsMismatchError(f'{path} is a directory, where the results file belongs. Use '
                                   'another --work-dir, or move it away')
    if not osp.isfile(path):
        return {}
    try:
        with open(path) as f:
            data = json.load(f)
    except (ValueError, RecursionError) as err:  # RecursionError: nested too deep
        raise ResultsMismatchError(f'{path} is not valid JSON ({err}); move it away to start '
                                   'afresh') from None
    saved = data.get('run') if isinstance(data, dict) else None
    if saved != identity:
        if not isinstance(saved, dict):
            what = 'results without a record of their checkpoint and config'
        else:
            differ = [k for k in identity if saved.get(k) != identity[k]]
            what = ('results of another run (' + '; '.join(
                f'{k}: {saved.get(k)!r} there, {identity[k]!r} now' for k in differ) + ')')
        raise ResultsMismatchError(f'{path} holds {what}. Use another --work-dir, or move the '
                                   'file away to start afresh')
    return data.get('results', {})


def main_metric(scope: str) -> str:
    return 'mIoU' if scope == 'mmseg' else 'coco/bbox_mAP'


def plan_settings(suites: Sequence[str], eps: Sequence[float], severities: Sequence[int],
                  corruptions: Sequence[str], scope: str) -> List[Tuple[str, dict]]:
    """(key, spec) of every setting to evaluate, clean first."""
    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        raise ValueError(f'unknown suite(s) {unknown}; expected some of {SUITES}')
    bad = [c for c in corruptions if c not in CORRUPTIONS]
    if bad:
        raise ValueError(f'unknown corruption(s) {bad}; expected some of {CORRUPTIONS}')
    if scope != 'mmseg' and ({'fgsm', 'pgd'} & set(suites)):
        raise ValueError('fgsm/pgd are implemented for segmentation configs only; detection '
                         'supports occlusion and corruptions')
    settings = [('clean', dict(kind='clean'))]
    if 'occlusion' in suites:
        settings.append(('occlusion', dict(kind='occlusion')))
    for attack in ('fgsm', 'pgd'):
        if attack in suites:
            settings += [(f'{attack}/eps={e:g}', dict(kind=attack, eps=float(e))) for e in eps]
    if 'corruptions' in suites:
        settings += [(f'{c}/{s}', dict(kind='corruption', corruption=c, severity=int(s)))
                     for c in corruptions for s in severities]
    return settings


def _with_transform(dataloader_cfg: dict, transform: dict) -> dict:
    """A copy of the test dataloader config with ``transform`` right after image loading."""
    cfg = copy.deepcopy(dataloader_cfg)
    pipeline = cfg['dataset']['pipeline']
    at = next((i for i, t in enumerate(pipeline) if 'LoadImage' in t['type']), None)
    if at is None:
        raise ValueError('the test pipeline has no LoadImage* transform to insert after')
    pipeline.insert(at + 1, transform)
    return cfg


def summarise(results: Dict[str, dict], metric: str) -> dict:
    """Relative drops from clean, and mPC/rPC over the corruption settings present."""
    clean = results['clean'][metric]
    for value in results.values():
        value['drop'] = None if not clean else round((clean - value[metric]) / clean, 4)
    corrupted = [v[metric] for k, v in results.items()
                 if k.split('/')[0] in CORRUPTIONS]
    summary = dict(metric=metric, clean=clean)
    if corrupted:
        mpc = sum(corrupted) / len(corrupted)
        summary.update(mPC=round(mpc, 4), rPC=round(mpc / clean, 4) if clean else None)
    return summary


def write_reports(work_dir: str, results: Dict[str, dict], summary: dict) -> Tuple[str, str]:
    """A markdown table and a PNG plot (metric vs epsilon per attack, vs severity per
    corruption) next to robustness.json."""
    metric = summary['metric']
    lines = [f'| setting | {metric} | relative drop |', '| --- | --- | --- |']
    lines += [f'| {k} | {v[metric]:.2f} | {v["drop"] if v["drop"] is not None else "-"} |'
              for k, v in results.items()]
    if 'mPC' in summary:
        lines.append(f'\nmPC {summary["mPC"]:.2f}, rPC {summary["rPC"]}')
    md = osp.join(work_dir, 'robustness.md')
    atomic_write(md, '\n'.join(lines) + '\n')

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for attack in ('fgsm', 'pgd'):
        pts = sorted((float(k.split('=')[1]), v[metric]) for k, v in results.items()
                     if k.startswith(attack + '/'))
        if pts:
            axes[0].plot(*zip(*pts), marker='o', label=attack)
    for name in CORRUPTIONS:
        pts = sorted((int(k.split('/')[1]), v[metric]) for k, v in results.items()
                     if k.split('/')[0] == name)
        if pts:
            axes[1].plot(*zip(*pts), marker='.', label=name)
    for ax, xlabel in ((axes[0], 'epsilon (pixels, /255)'), (axes[1], 'severity')):
        ax.axhline(summary['clean'], color='k', linestyle='--', label='clean')
        ax.set_xlabel(xlabel)
        ax.set_ylabel(metric)
        ax.legend(fontsize=6)
    fig.tight_layout()
    png = osp.join(work_dir, 'robustness.png')
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return md, png


def run_suite(cfg: Config, checkpoint: str, work_dir: str, suites: Sequence[str],
              eps: Sequence[float] = (1, 2, 4, 8), severities: Sequence[int] = SEVERITIES,
              corruptions: Sequence[str] = CORRUPTIONS, pgd_steps: int = 10,
              pgd_step_size: Optional[float] = None, occlusion_fraction: float = 0.25,
              occlusion_fill: float = 0, seed: int = 0) -> dict:
    """Evaluate every setting (resuming from ``work_dir``/robustness.json); returns
    ``dict(results=..., summary=...)``."""
    from mmengine.runner import Runner
    scope = cfg.default_scope
    settings = plan_settings(suites, eps, severities, corruptions, scope)
    metric = main_metric(scope)
    os.makedirs(work_dir, exist_ok=True)
    out_json = osp.join(work_dir, 'robustness.json')
    identity = run_identity(cfg, checkpoint, dict(
        seed=seed, pgd_steps=pgd_steps, pgd_step_size=pgd_step_size,
        occlusion_fraction=occlusion_fraction, occlusion_fill=occlusion_fill))
    results = load_saved_results(out_json, identity)
    if results:
        print_log(f'resuming: {len(results)} setting(s) already in {out_json}', 'current')

    cfg = copy.deepcopy(cfg)
    cfg.work_dir = work_dir
    cfg.load_from = checkpoint
    runner = Runner.from_cfg(cfg)
    runner.load_checkpoint(checkpoint, map_location='cpu')
    model = runner.model
    model.eval()

    todo = [(k, s) for k, s in settings if k not in results]
    progress = ProgressBar(len(todo)) if todo else None
    for key, spec in todo:
        loader_cfg = cfg.test_dataloader
        attack: Optional[Callable] = None
        if spec['kind'] == 'occlusion':
            loader_cfg = _with_transform(loader_cfg, dict(
                type='CentreOcclusion', fraction=occlusion_fraction, fill=occlusion_fill))
        elif spec['kind'] == 'corruption':
            loader_cfg = _with_transform(loader_cfg, dict(
                type='CommonCorruption', corruption=spec['corruption'],
                severity=spec['severity'], seed=seed))
        elif spec['kind'] == 'fgsm':
            attack = lambda m, b, e=spec['eps']: fgsm_attack(m, b, e)  # noqa: E731
        elif spec['kind'] == 'pgd':
            attack = lambda m, b, e=spec['eps']: pgd_attack(  # noqa: E731
                m, b, e, steps=pgd_steps, step_size=pgd_step_size, seed=seed)
        results[key] = _evaluate(runner, model, loader_cfg, attack)
        # Written as each setting finishes: resumable.
        atomic_write(out_json, json.dumps(dict(run=identity, results=results), indent=2))
        progress.update()
    ordered = {k: results[k] for k, _ in settings}
    summary = summarise(ordered, metric)
    atomic_write(out_json, json.dumps(dict(run=identity, summary=summary, results=ordered),
                                      indent=2))
    md, png = write_reports(work_dir, ordered, summary)
    return dict(results=ordered, summary=summary, json=out_json, markdown=md, plot=png)


def _evaluate(runner, model, loader_cfg: dict, attack: Optional[Callable]) -> dict:
    from mmengine.runner import Runner
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    evaluator = runner.build_evaluator(copy.deepcopy(runner.cfg.test_evaluator))
    evaluator.dataset_meta = loader.dataset.metainfo
    for batch in loader:
        if attack is not None:
            batch = dict(inputs=attack(model, batch), data_samples=batch['data_samples'])
        with torch.no_grad():
            outputs = model.test_step(batch)
        evaluator.process(data_samples=outputs, data_batch=batch)
    metrics = evaluator.evaluate(len(loader.dataset))
    return {k: (v.item() if hasattr(v, 'item') else v) for k, v in metrics.items()}
