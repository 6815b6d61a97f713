"""README's first command: tools/demo_compare.py trains and tests several configs under one recipe
and tabulates / plots them. Here end-to-end at a tiny size (2 models, 4 iterations, the small
synthetic set); every figure in the table, JSON and plot must be the runs' own."""
import json
import os.path as osp
import statistics

import pytest

from conftest import DEMO_SEG, ROOT, run_tool, tiny_seg_options

CB_DEMO = osp.join(ROOT, 'configs/demo/upernet_cbvit-mini_4xb8-120it_synthetic-ade20k-128x128.py')


def _scalars(log_dir):
    with open(osp.join(log_dir, 'vis_data', 'scalars.json')) as f:
        return [json.loads(line) for line in f]


def _markdown_rows(path):
    lines = open(path).read().strip().splitlines()
    header = [c.strip() for c in lines[0].strip('|').split('|')]
    return [dict(zip(header, (c.strip() for c in line.strip('|').split('|'))))
            for line in lines[2:]]


def test_demo_compare_end_to_end(ade_root, tmp_path):
    work = tmp_path / 'demo'
    opts = tiny_seg_options(ade_root, max_iters=4, ckpt_interval=4)
    proc = run_tool(['tools/demo_compare.py', DEMO_SEG, CB_DEMO, '--work-dir', str(work),
                     '--val-interval', '2', '--shape', '64', '64', '--cfg-options', *opts])
    result = json.loads((work / 'comparison.json').read_text())
    rows = {row['name']: row for row in result['rows']}
    assert list(rows) == ['r18-mini', 'cbvit-mini']
    assert rows['r18-mini']['backbone'] == 'ResNetV1c' and rows['cbvit-mini']['backbone'] == 'CBViT'
    table = {row['model']: row for row in _markdown_rows(work / 'comparison.md')}
    assert list(table) == list(rows)

    for name, config in (('r18-mini', DEMO_SEG), ('cbvit-mini', CB_DEMO)):
        row, table_row = rows[name], table[name]
        run = json.loads((work / name / 'run.json').read_text())
        tested = json.loads((work / name / 'test_results.json').read_text())['metrics']
        assert run['test_results'] == str(work / name / 'test_results.json')
        assert osp.isfile(run['checkpoint']) and run['checkpoint'].endswith('iter_4.pth')
        # Metrics: those tools/test.py wrote for the run's last checkpoint.
        assert (row['mIoU'], row['mAcc'], row['aAcc']) == (
            tested['mIoU'], tested['mAcc'], tested['aAcc'])
        assert table_row['mIoU'] == f'{tested["mIoU"]:.2f}'
        assert table_row['mAcc'] == f'{tested["mAcc"]:.2f}'
        # Params and FLOPs: those of tools/analysis/get_flops.py at the same size (one model
        # through the tool; both rows come from one function). The tool's main runs in this
        # process: a second interpreter would only add its start-up.
        if name == 'cbvit-mini':
            from vitext.cli.flops import main as get_flops
            flops_json = tmp_path / f'{name}_flops.json'
            get_flops([config, '--shape', '64', '64', '--json', str(flops_json)])
            counted = json.loads(flops_json.read_text())
            assert (row['params_m'], row['flops_g']) == (counted['params_m'], counted['flops_g'])
        assert table_row['params (M)'] == f'{row["params_m"]:.2f}' and row['flops_g'] > 0
        # Curves and s/iter: the training run's own mmengine scalars.
        scalars = _scalars(run['train_log_dir'])
        train = [e for e in scalars if 'loss' in e]
        val = [e for e in scalars if 'mIoU' in e]
        assert result['curves'][name]['loss'] == [[e['step'], e['loss']] for e in train]
        assert [step for step, _ in result['curves'][name]['loss']] == [1, 2, 3, 4]
        assert result['curves'][name]['mIoU'] == [[e['step'], e['mIoU']] for e in val]
        assert [step for step, _ in result['curves'][name]['mIoU']] == [2, 4]
        assert row['s_per_iter'] == statistics.median(e['time'] for e in train)
        assert table_row['s/iter'] == f'{row["s_per_iter"]:.3f}'
        # The test scores the checkpoint validated at the last iteration, on the same images.
        assert result['curves'][name]['mIoU'][-1][1] == pytest.approx(tested['mIoU'], abs=0.01)
        assert f'| {name} |' in proc.stdout

    import matplotlib.image
    image = matplotlib.image.imread(str(work / 'comparison.png'))
    assert image.shape[:2] == (400, 1100)  # figsize (11, 4) at 100 dpi


def test_demo_compare_names_a_missing_config(tmp_path):
    proc = run_tool(['tools/demo_compare.py', 'configs/demo/no_such_config.py', '--work-dir',
                     str(tmp_path)], check=False)
    assert proc.returncode != 0
    assert "config file 'configs/demo/no_such_config.py' does not exist" in proc.stderr
