"""Inference speed (images/s) and peak memory of a config (+ checkpoint) at a given size, in whole
and/or sliding-window mode, with warm-up and repeated timed runs (median, min, max).

python tools/analysis/benchmark.py CONFIG [--checkpoint CKPT] [--shape H W] [--mode whole slide]
    [--batch-size 1] [--warmup 2] [--repeats 10] [--device cpu|cuda] [--deploy] [--json FILE]
    [--crop-size H W] [--stride H W] [--cfg-options k=v ...]

Segmentors run mmseg's ``inference`` (the test path: whole image, or crops of --crop-size /
the config's test_cfg.crop_size every --stride, logits averaged); detectors run backbone + neck
(their heads' cost depends on proposals), in whole mode only. Random images of --shape; without
--checkpoint the weights are random, which does not change the speed. --deploy re-parameterises
first. Peak memory: the most tensor memory one call held above what was held before it (the CUDA
allocator's statistics, or on CPU the allocations torch's allocator reports to the profiler).
"""
import argparse
import json

import torch
from mmengine.config import DictAction


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('--checkpoint')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'), default=(512, 512))
    parser.add_argument('--mode', nargs='+', choices=['whole', 'slide'], default=['whole'])
    parser.add_argument('--crop-size', type=int, nargs=2, metavar=('H', 'W'))
    parser.add_argument('--stride', type=int, nargs=2, metavar=('H', 'W'))
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--deploy', action='store_true', help='re-parameterise first')
    parser.add_argument('--json', help='write the results to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def main():
    args = parse_args()
    from vitext.analysis.model_from_config import TensorForward, build_model
    from vitext.analysis.timing import interleaved_times, peak_memory_mb
    from vitext.models.deploy import switch_to_deploy
    model, scope = build_model(args.config, args.checkpoint, args.cfg_options, args.device)
    if args.deploy:
        switch_to_deploy(model)
    if scope != 'mmseg' and args.mode != ['whole']:
        raise SystemExit('error: --mode slide is for segmentors (mmseg configs) only')
    H, W = args.shape
    images = torch.rand(args.batch_size, 3, H, W, device=args.device) * 255
    if hasattr(model, 'data_preprocessor'):
        mean = torch.as_tensor(model.data_preprocessor.mean, device=args.device)
        std = torch.as_tensor(model.data_preprocessor.std, device=args.device)
        images = (images - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
    metas = [dict(ori_shape=(H, W), img_shape=(H, W), pad_shape=(H, W),
                  padding_size=[0, 0, 0, 0])] * args.batch_size

    def runner(mode: str):
        if scope != 'mmseg':
            forward = TensorForward(model, scope)
            return lambda: forward(images)
        test_cfg = model.test_cfg
        test_cfg['mode'] = mode
        if mode == 'slide':
            test_cfg['crop_size'] = tuple(args.crop_size or test_cfg.get('crop_size', (512, 512)))
            test_cfg['stride'] = tuple(args.stride or test_cfg.get('stride', (341, 341)))
        return lambda: model.inference(images, metas)

    results = {}
    for mode in args.mode:
        run = runner(mode)

        def timed():
            with torch.no_grad():
                run()

        times = interleaved_times({mode: timed}, args.device, warmup=args.warmup,
                                  repeats=args.repeats)[mode]
        per_s = [args.batch_size / t for t in times['runs']]
        results[mode] = dict(
            images_per_s_median=args.batch_size / times['median_s'],
            images_per_s_min=min(per_s), images_per_s_max=max(per_s),
            seconds_per_batch=times, peak_memory_mb=peak_memory_mb(timed, args.device))
        r = results[mode]
        print(f'{mode}: {r["images_per_s_median"]:.3f} images/s (median of {args.repeats}; '
              f'min {r["images_per_s_min"]:.3f}, max {r["images_per_s_max"]:.3f}), peak memory '
              f'{r["peak_memory_mb"]:.1f} MB')
    info = dict(config=args.config, checkpoint=args.checkpoint, shape=[H, W],
                batch_size=args.batch_size, device=args.device, deploy=args.deploy,
                torch=torch.__version__, threads=torch.get_num_threads(),
                gpu=torch.cuda.get_device_name() if args.device.startswith('cuda') else None,
                results=results)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(info, f, indent=2)


if __name__ == '__main__':
    main()
