"""Robustness suite for segmentation (and, for occlusion/corruptions, detection) checkpoints.

Settings are evaluated on the same test images: ``clean`` first, then occlusion, FGSM/PGD at
each epsilon (segmentation only) and each corruption at each severity. Every finished setting is
written to ``<work_dir>/robustness.json`` at once, so a killed run resumes where it stopped.
Reports: the metrics and the relative drop from clean per setting; for corruptions also mPC (mean
over types and severities) and rPC (mPC / clean); a markdown table and a PNG plot.
"""
import copy
import json
import os
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.utils import ProgressBar

from .attacks import fgsm_attack, pgd_attack
from .corruptions import CORRUPTIONS, SEVERITIES

SUITES = ('occlusion', 'fgsm', 'pgd', 'corruptions')


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
    with open(md, 'w') as f:
        f.write('\n'.join(lines) + '\n')

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
    results: Dict[str, dict] = {}
    if osp.isfile(out_json):
        with open(out_json) as f:
            results = json.load(f).get('results', {})
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
        with open(out_json, 'w') as f:  # written as each setting finishes: resumable
            json.dump(dict(checkpoint=checkpoint, results=results), f, indent=2)
        progress.update()
    ordered = {k: results[k] for k, _ in settings}
    summary = summarise(ordered, metric)
    with open(out_json, 'w') as f:
        json.dump(dict(checkpoint=checkpoint, summary=summary, results=ordered), f, indent=2)
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
