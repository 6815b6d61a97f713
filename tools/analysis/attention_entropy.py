"""Per-layer mean attention entropy of a CBViT segmentor over images of its test set, with and
without Context Broadcasting (the CB paper's analysis: CB lowers the entropy, most in deep
layers).

python tools/analysis/attention_entropy.py CONFIG CHECKPOINT [--baseline-config CFG
    --baseline-checkpoint CKPT] [--num-images 16] [--work-dir DIR] [--cfg-options k=v ...]

"without CB" is a separately trained model when --baseline-config/--baseline-checkpoint are
given (the paper's comparison), else the same weights with the CB ops switched off. Entropy is
in nats, averaged over heads, query tokens (class token included) and images; log(N) is the
uniform attention's. Writes <work-dir>/attention_entropy.json and .png.
"""
import argparse
import json
import math
import os

import torch
from mmengine.config import DictAction


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--baseline-config')
    parser.add_argument('--baseline-checkpoint')
    parser.add_argument('--num-images', type=int, default=16)
    parser.add_argument('--work-dir', default='work_dirs/attention_entropy')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    if bool(args.baseline_config) != bool(args.baseline_checkpoint):
        parser.error('--baseline-config and --baseline-checkpoint go together')
    return args


def batches(config, cfg_options, num_images):
    """Preprocessor-ready batches of the config's test set, ``num_images`` in all."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    from vitext.apis import fill_label_ranges
    from vitext.preflight import check_data, load_config
    cfg = load_config(config, cfg_options)
    check_data(cfg, ('test_dataloader',))
    fill_label_ranges(cfg, ('test_dataloader',))
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmseg')):
        loader = Runner.build_dataloader(cfg.test_dataloader)
    seen = 0
    for batch in loader:
        yield batch
        seen += len(batch['inputs'])
        if seen >= num_images:
            return


def layer_entropies(model, config, cfg_options, num_images):
    from vitext.analysis.attention_entropy import per_layer_entropy
    backbone = model.backbone
    if not hasattr(backbone, 'attention_maps'):
        raise SystemExit(f'error: model.backbone ({type(backbone).__name__}) has no attention '
                         'maps; this analysis is for CBViT backbones')
    totals, count, tokens = None, 0, None
    for batch in batches(config, cfg_options, num_images):
        with torch.no_grad():
            inputs = model.data_preprocessor(batch, False)['inputs']
            maps = backbone.attention_maps(inputs)
        values = per_layer_entropy(maps)
        n = len(inputs)
        totals = [v * n for v in values] if totals is None else \
            [t + v * n for t, v in zip(totals, values)]
        count, tokens = count + n, maps[0].shape[-1]
    return [t / count for t in totals], count, tokens


def main():
    args = parse_args()
    from vitext.analysis.attention_entropy import without_context_broadcast
    from vitext.analysis.model_from_config import build_model
    model, _ = build_model(args.config, args.checkpoint, args.cfg_options)
    curves = {}
    curves['with CB'], count, tokens = layer_entropies(model, args.config, args.cfg_options,
                                                       args.num_images)
    if args.baseline_config:
        baseline, _ = build_model(args.baseline_config, args.baseline_checkpoint,
                                  args.cfg_options)
        label = 'without CB (baseline model)'
        curves[label] = layer_entropies(baseline, args.baseline_config, args.cfg_options,
                                        args.num_images)[0]
    else:
        label = 'without CB (same weights, CB off)'
        curves[label] = layer_entropies(without_context_broadcast(model), args.config,
                                        args.cfg_options, args.num_images)[0]
    os.makedirs(args.work_dir, exist_ok=True)
    result = dict(config=args.config, checkpoint=args.checkpoint,
                  baseline=[args.baseline_config, args.baseline_checkpoint], images=count,
                  tokens=tokens, uniform_entropy=math.log(tokens), entropy_nats=curves)
    json_path = os.path.join(args.work_dir, 'attention_entropy.json')
    with open(json_path, 'w') as f:
        json.dump(result, f, indent=2)
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, marker='o', label=name)
    ax.set_xlabel('layer')
    ax.set_ylabel('mean attention entropy (nats)')
    ax.set_title(f'{count} images, {tokens} tokens (uniform: {math.log(tokens):.2f})')
    ax.legend()
    fig.tight_layout()
    png_path = os.path.join(args.work_dir, 'attention_entropy.png')
    fig.savefig(png_path, dpi=120)
    print('layer | ' + ' | '.join(curves))
    for i, row in enumerate(zip(*curves.values()), start=1):
        print(f'{i} | ' + ' | '.join(f'{v:.4f}' for v in row))
    print(f'results: {json_path}, {png_path}')


if __name__ == '__main__':
    main()
