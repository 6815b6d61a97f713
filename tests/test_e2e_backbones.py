"""Each vitext backbone's reduced demo config runs the foundation's path on synthetic ADE20K:
tools/train.py -> checkpoint -> tools/test.py with mIoU in test_results.json."""
import json
import os.path as osp

import pytest

from conftest import ROOT, run_tool, tiny_seg_options

BACKBONE_DEMOS = [
    'configs/demo/upernet_cbvit-mini_4xb8-300it_synthetic-ade20k-128x128.py',
    'configs/demo/upernet_aftconv-mini_4xb8-300it_synthetic-ade20k-128x128.py',
]


@pytest.mark.parametrize('config', BACKBONE_DEMOS, ids=lambda p: osp.basename(p).split('_')[1])
def test_backbone_demo_trains_and_tests(config, ade_root, tmp_path):
    config = osp.join(ROOT, config)
    opts = tiny_seg_options(ade_root, max_iters=2, ckpt_interval=2)
    run_tool(['tools/train.py', config, '--work-dir', str(tmp_path), '--cfg-options', *opts])
    run_tool(['tools/test.py', config, str(tmp_path / 'iter_2.pth'), '--work-dir',
              str(tmp_path / 'test'), '--cfg-options', *opts])
    metrics = json.loads((tmp_path / 'test' / 'test_results.json').read_text())['metrics']
    assert 0 <= metrics['mIoU'] <= 100
