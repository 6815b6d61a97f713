"""Each vitext backbone's reduced demo config runs the foundation's path on synthetic ADE20K:
tools/train.py -> checkpoint -> tools/test.py with mIoU in test_results.json; re-parameterisable
backbones are tested in deploy form (``--deploy``), which must score as the training form."""
import json
import os.path as osp

import pytest

from conftest import ROOT, run_tool, tiny_seg_options

BACKBONE_DEMOS = [
    'configs/demo/upernet_cbvit-mini_4xb8-300it_synthetic-ade20k-128x128.py',
    'configs/demo/upernet_aftconv-mini_4xb8-300it_synthetic-ade20k-128x128.py',
    'configs/demo/upernet_slide-swin-mini_4xb8-300it_synthetic-ade20k-128x128.py',
]
REPARAMETERISABLE = ('slide-swin-mini',)


@pytest.mark.parametrize('config', BACKBONE_DEMOS, ids=lambda p: osp.basename(p).split('_')[1])
def test_backbone_demo_trains_and_tests(config, ade_root, tmp_path):
    config = osp.join(ROOT, config)
    opts = tiny_seg_options(ade_root, max_iters=2, ckpt_interval=2)
    run_tool(['tools/train.py', config, '--work-dir', str(tmp_path), '--cfg-options', *opts])
    run_tool(['tools/test.py', config, str(tmp_path / 'iter_2.pth'), '--work-dir',
              str(tmp_path / 'test'), '--cfg-options', *opts])
    metrics = json.loads((tmp_path / 'test' / 'test_results.json').read_text())['metrics']
    assert 0 <= metrics['mIoU'] <= 100
    if any(name in config for name in REPARAMETERISABLE):
        proc = run_tool(['tools/test.py', config, str(tmp_path / 'iter_2.pth'), '--deploy',
                         '--work-dir', str(tmp_path / 'deploy'), '--cfg-options', *opts])
        assert 'switched to deploy form: backbone' in proc.stdout + proc.stderr
        deployed = json.loads((tmp_path / 'deploy' / 'test_results.json').read_text())
        for key, value in metrics.items():
            assert abs(deployed['metrics'][key] - value) < 0.05, key
