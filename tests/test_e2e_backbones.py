"""Each vitext backbone's reduced demo config runs the foundation's path on synthetic ADE20K:
tools/train.py -> checkpoint -> tools/test.py with mIoU in test_results.json, the same as mmseg's
own inference API gives for that checkpoint; re-parameterisable backbones are tested in deploy
form (``--deploy``), which must predict and score exactly as the training form."""
import json
import os.path as osp

import numpy as np
import pytest
from seg_reference import ade_metrics, mmseg_predictions, saved_predictions

from conftest import ROOT, run_tools, tiny_seg_options

BACKBONE_DEMOS = [
    'configs/demo/upernet_cbvit-mini_4xb8-120it_synthetic-ade20k-128x128.py',
    'configs/demo/upernet_aftconv-mini_4xb8-120it_synthetic-ade20k-128x128.py',
    'configs/demo/upernet_slide-swin-mini_4xb8-120it_synthetic-ade20k-128x128.py',
]
REPARAMETERISABLE = ('slide-swin-mini',)


@pytest.mark.parametrize('config', BACKBONE_DEMOS, ids=lambda p: osp.basename(p).split('_')[1])
def test_backbone_demo_trains_and_tests(config, mini_checkpoint, ade_root, tmp_path):
    config = osp.join(ROOT, config)
    ckpt = str(mini_checkpoint(config))  # tools/train.py, 2 iterations (conftest)
    opts = tiny_seg_options(ade_root, max_iters=2, ckpt_interval=2)
    tests = [['tools/test.py', config, ckpt, '--work-dir', str(tmp_path / 'test'),
              '--out', str(tmp_path / 'pred'), '--cfg-options', *opts]]
    deploy = any(name in config for name in REPARAMETERISABLE)
    if deploy:
        tests.append(['tools/test.py', config, ckpt, '--deploy', '--work-dir',
                      str(tmp_path / 'deploy'), '--out', str(tmp_path / 'deploy_pred'),
                      '--cfg-options', *opts])
    # Both forms' tests in one interpreter (one start-up); the training form's test switches
    # nothing to deploy form, so the output tells what the deploy form's did.
    proc = run_tools(tests)
    metrics = json.loads((tmp_path / 'test' / 'test_results.json').read_text())['metrics']
    # tools/test.py evaluated the trained weights: its predictions and scores are those of
    # the checkpoint run through mmseg's inference API in this process.
    preds = saved_predictions(str(tmp_path / 'pred'))
    reference = mmseg_predictions(config, ckpt, f'{ade_root}/images/validation')
    assert sorted(preds) == sorted(reference)
    for stem, pred in preds.items():
        np.testing.assert_array_equal(pred, reference[stem], err_msg=stem)
    ref = ade_metrics(reference, f'{ade_root}/annotations/validation')
    assert metrics == {key: ref[key] for key in ('aAcc', 'mIoU', 'mAcc')}
    if deploy:
        assert 'switched to deploy form: backbone' in proc.stdout + proc.stderr
        deployed = json.loads((tmp_path / 'deploy' / 'test_results.json').read_text())
        assert deployed['metrics'] == metrics
        for stem, pred in saved_predictions(str(tmp_path / 'deploy_pred')).items():
            np.testing.assert_array_equal(pred, preds[stem], err_msg=stem)
