"""tools/analysis/*: FLOPs/params, deploy + ONNX, speed, attention entropy, on tiny checkpoints
trained on the synthetic set."""
import json
import math
import os.path as osp
import sys

import pytest
import torch
from torch import nn

from conftest import ROOT, run_tool, tiny_seg_options
from vitext.analysis.attention import attention_entropy
from vitext.analysis.complexity import ImageClassifier, count_parameters
from vitext.analysis.export import fix_adaptive_pools
from vitext.models.backbones import SlidePVT

SLIDE_DEMO = osp.join(ROOT, 'configs/demo/upernet_slide-swin-mini_4xb8-120it_synthetic-ade20k-128x128.py')
CB_DEMO = osp.join(ROOT, 'configs/demo/upernet_cbvit-mini_4xb8-120it_synthetic-ade20k-128x128.py')


def trained(config, ade_root, work):
    run_tool(['tools/train.py', config, '--work-dir', str(work), '--cfg-options',
              *tiny_seg_options(ade_root, max_iters=2, ckpt_interval=2)])
    return str(work / 'iter_2.pth')


@pytest.fixture(scope='module')
def slide_checkpoint(ade_root, tmp_path_factory):
    return trained(SLIDE_DEMO, ade_root, tmp_path_factory.mktemp('slide_ckpt'))


def test_model_zoo_table_reproduces_backbone_test_counts(tmp_path):
    """The table README's model zoo comes from: every backbone with a paper size within the
    tolerance its backbone test asserts (Slide-Swin 3 %, others 2 %), Slide FLOPs within 5 %."""
    out = tmp_path / 'zoo.json'
    proc = run_tool(['tools/analysis/get_flops.py', '--model-zoo', '--json', str(out)])
    assert '| Slide-Swin-T | 28.31 |' in proc.stdout
    rows = json.loads(out.read_text())['rows']
    assert len(rows) == 14
    for row in rows:
        if row['paper_params_m']:
            tol = 0.03 if 'Swin' in row['name'] else 0.02
            assert abs(row['params_m'] / row['paper_params_m'] - 1) < tol, row
        if row['paper_flops_g']:
            assert abs(row['deploy_flops_g'] / row['paper_flops_g'] - 1) < 0.05, row


def test_get_flops_backbone_and_config(tmp_path):
    out = tmp_path / 'pvt.json'
    run_tool(['tools/analysis/get_flops.py', '--backbone', 'SlidePVT', '--arch', 'tiny',
              '--json', str(out)])
    result = json.loads(out.read_text())
    expected = count_parameters(ImageClassifier(SlidePVT('tiny')))
    assert result['params_m'] == pytest.approx(expected / 1e6)
    assert result['deploy_params_m'] < result['params_m']  # two convs became one
    out = tmp_path / 'cfg.json'
    proc = run_tool(['tools/analysis/get_flops.py', SLIDE_DEMO, '--shape', '128', '96',
                     '--json', str(out)])
    result = json.loads(out.read_text())
    assert 'segmentor logits' in proc.stdout and result['shape'] == [128, 96]
    assert 0 < result['deploy_flops_g'] <= result['flops_g']


def test_deploy_tool_checks_saves_and_exports_onnx(slide_checkpoint, ade_root, tmp_path):
    deploy_ckpt = tmp_path / 'deploy.pth'
    proc = run_tool(['tools/analysis/deploy.py', SLIDE_DEMO, slide_checkpoint, str(deploy_ckpt),
                     '--shape', '96', '128', '--onnx', str(tmp_path / 'model.onnx')])
    assert 'switched: backbone' in proc.stdout
    assert 'max |PyTorch - onnxruntime|' in proc.stdout
    saved = torch.load(deploy_ckpt, weights_only=True)
    assert saved['meta']['deploy'] and any('.attn.merged.' in k for k in saved['state_dict'])
    assert not any('.attn.deform.' in k for k in saved['state_dict'])
    # The deploy checkpoint evaluates with the training config and scores as the original.
    opts = tiny_seg_options(ade_root)
    scores = []
    for ckpt, work in ((slide_checkpoint, 'train_form'), (str(deploy_ckpt), 'deploy_form')):
        run_tool(['tools/test.py', SLIDE_DEMO, ckpt, '--work-dir', str(tmp_path / work),
                  '--cfg-options', *opts])
        scores.append(json.loads((tmp_path / work / 'test_results.json').read_text())['metrics'])
    for key in scores[0]:
        assert abs(scores[0][key] - scores[1][key]) < 0.05, key


# deploy.py with a merge that is off by 1e-2 in every merged bias: the tool must notice. (The
# fused kernels compute the training and deploy forms bit for bit alike, so ``--atol 0`` no
# longer tells a broken merge from a good one.)
BROKEN_MERGE = '''
import runpy, sys
from vitext.ops.slide import SlideAttention
merge = SlideAttention.switch_to_deploy
def broken_merge(self):
    merged_before = self.deploy
    merge(self)
    if not merged_before:
        self.merged.bias.data.add_(1e-2)
SlideAttention.switch_to_deploy = broken_merge
sys.argv = ['tools/analysis/deploy.py'] + sys.argv[1:]
runpy.run_path('tools/analysis/deploy.py', run_name='__main__')
'''


def test_deploy_tool_fails_beyond_tolerance(slide_checkpoint, tmp_path):
    proc = run_tool([sys.executable, '-c', BROKEN_MERGE, SLIDE_DEMO, slide_checkpoint,
                     str(tmp_path / 'd.pth'), '--shape', '64', '64'], check=False)
    assert proc.returncode == 1
    assert 'does not reproduce the training form' in proc.stderr
    assert not (tmp_path / 'd.pth').exists()


def test_benchmark_tool(slide_checkpoint, tmp_path):
    out = tmp_path / 'speed.json'
    proc = run_tool(['tools/analysis/benchmark.py', SLIDE_DEMO, '--checkpoint', slide_checkpoint,
                     '--shape', '96', '128', '--mode', 'whole', 'slide', '--crop-size', '64',
                     '64', '--stride', '48', '48', '--warmup', '1', '--repeats', '3',
                     '--deploy', '--json', str(out)])
    result = json.loads(out.read_text())
    for mode in ('whole', 'slide'):
        r = result['results'][mode]
        assert r['images_per_s_min'] <= r['images_per_s_median'] <= r['images_per_s_max']
        assert len(r['seconds_per_batch']['runs']) == 3 and r['peak_memory_mb'] >= 0
        assert f'{mode}: ' in proc.stdout


def test_attention_entropy_tool(ade_root, tmp_path):
    ckpt = trained(CB_DEMO, ade_root, tmp_path / 'cb')
    work = tmp_path / 'entropy'
    run_tool(['tools/analysis/attention_entropy.py', CB_DEMO, ckpt, '--num-images', '4',
              '--work-dir', str(work), '--cfg-options', *tiny_seg_options(ade_root)])
    result = json.loads((work / 'attention_entropy.json').read_text())
    side = math.isqrt(result['tokens'] - 1)  # a grid of patches + the class token
    assert result['images'] == 4 and side > 1 and side * side == result['tokens'] - 1
    curves = result['entropy_nats']
    assert list(curves) == ['with CB', 'without CB (same weights, CB off)']
    for values in curves.values():
        assert len(values) == 4
        assert all(0 < v <= math.log(result['tokens']) + 1e-6 for v in values)
    assert (work / 'attention_entropy.png').stat().st_size > 0


def test_attention_entropy_bounds():
    n = 5
    uniform = torch.full((2, 3, n, n), 1. / n)
    one_hot = torch.eye(n).expand(2, 3, n, n)
    torch.testing.assert_close(attention_entropy(uniform), torch.full((2,), math.log(n)))
    torch.testing.assert_close(attention_entropy(one_hot), torch.zeros(2))


@pytest.mark.parametrize('size,out', [((7, 10), (3, 6)), ((16, 16), (1, 6)), ((5, 4), (6, 2))])
def test_fixed_adaptive_pool_is_exact(size, out):
    model = nn.Sequential(nn.Conv2d(2, 2, 1), nn.AdaptiveAvgPool2d(out))
    x = torch.randn(2, 2, *size)
    expected = model(x)
    assert fix_adaptive_pools(model, x) == 1
    assert not isinstance(model[1], nn.AdaptiveAvgPool2d)
    torch.testing.assert_close(model(x), expected)
