"""tools/analysis/*: FLOPs/params, deploy + ONNX, speed, attention entropy, on tiny checkpoints
trained on the synthetic set."""
import gc
import json
import math
import os.path as osp
import runpy
import statistics
import sys

import pytest
import torch
from torch import nn

from conftest import ROOT, run_main, run_tool, run_tools, tiny_seg_options
from vitext.analysis.attention_entropy import attention_entropy
from vitext.analysis.complexity import count_parameters
from vitext.analysis.export import fix_adaptive_pools
from vitext.cli.deploy import main as deploy_main
from vitext.cli.flops import main as flops_main
from vitext.models.classifiers import build_classifier

SLIDE_DEMO = osp.join(ROOT, 'configs/demo/upernet_slide-swin-mini_4xb8-120it_synthetic-ade20k-128x128.py')
CB_DEMO = osp.join(ROOT, 'configs/demo/upernet_cbvit-mini_4xb8-120it_synthetic-ade20k-128x128.py')


@pytest.fixture(scope='module')
def slide_checkpoint(mini_checkpoint):
    return str(mini_checkpoint(SLIDE_DEMO))


# The flops and deploy commands run in this process (run_main): tools/analysis/get_flops.py and
# deploy.py only call them, and print the same help (tests/test_cli.py).
def test_model_zoo_table_reproduces_backbone_test_counts(tmp_path, capsys):
    """The table README's model zoo comes from: every backbone with a paper size within the
    tolerance its backbone test asserts (Slide-Swin 3 %, others 2 %), Slide FLOPs within 5 %."""
    out = tmp_path / 'zoo.json'
    code, stdout, err = run_main(flops_main, ['--model-zoo', '--json', str(out)], capsys)
    assert code == 0, err
    assert '| Slide-Swin-T | 28.31 |' in stdout
    rows = json.loads(out.read_text())['rows']
    assert len(rows) == 14
    for row in rows:
        if row['paper_params_m']:
            tol = 0.03 if 'Swin' in row['name'] else 0.02
            assert abs(row['params_m'] / row['paper_params_m'] - 1) < tol, row
        if row['paper_flops_g']:
            assert abs(row['deploy_flops_g'] / row['paper_flops_g'] - 1) < 0.05, row


def test_get_flops_backbone_and_config(tmp_path, capsys):
    out = tmp_path / 'pvt.json'
    code, _, err = run_main(flops_main, ['--backbone', 'SlidePVT', '--arch', 'tiny',
                                         '--json', str(out)], capsys)
    assert code == 0, err
    result = json.loads(out.read_text())
    expected = count_parameters(build_classifier(dict(type='SlidePVT', arch='tiny')))
    assert result['params_m'] == pytest.approx(expected / 1e6)
    assert result['deploy_params_m'] < result['params_m']  # two convs became one
    out = tmp_path / 'cfg.json'
    code, stdout, err = run_main(flops_main, [SLIDE_DEMO, '--shape', '128', '96',
                                              '--json', str(out)], capsys)
    assert code == 0, err
    result = json.loads(out.read_text())
    assert 'segmentor logits' in stdout and result['shape'] == [128, 96]
    assert 0 < result['deploy_flops_g'] <= result['flops_g']


def test_deploy_tool_checks_saves_and_exports_onnx(slide_checkpoint, ade_root, tmp_path,
                                                   capsys):
    deploy_ckpt = tmp_path / 'deploy.pth'
    code, stdout, err = run_main(deploy_main, [
        SLIDE_DEMO, slide_checkpoint, str(deploy_ckpt), '--shape', '96', '128',
        '--onnx', str(tmp_path / 'model.onnx')], capsys)
    assert code == 0, err
    assert 'switched: backbone' in stdout
    assert 'max |PyTorch - onnxruntime|' in stdout
    saved = torch.load(deploy_ckpt, weights_only=True)
    assert saved['meta']['deploy'] and any('.attn.merged.' in k for k in saved['state_dict'])
    assert not any('.attn.deform.' in k for k in saved['state_dict'])
    # The deploy checkpoint evaluates with the training config and scores as the original.
    opts = tiny_seg_options(ade_root)
    forms = ((slide_checkpoint, 'train_form'), (str(deploy_ckpt), 'deploy_form'))
    run_tools([['tools/test.py', SLIDE_DEMO, ckpt, '--work-dir', str(tmp_path / work),
                '--cfg-options', *opts] for ckpt, work in forms])
    scores = [json.loads((tmp_path / work / 'test_results.json').read_text())['metrics']
              for _, work in forms]
    for key in scores[0]:
        assert abs(scores[0][key] - scores[1][key]) < 0.05, key


def test_deploy_tool_fails_beyond_tolerance(slide_checkpoint, tmp_path, capsys, monkeypatch):
    """A merge that is off by 1e-2 in every merged bias: the tool must notice. (The fused
    kernels compute the training and deploy forms bit for bit alike, so ``--atol 0`` no longer
    tells a broken merge from a good one.)"""
    from vitext.ops.slide import SlideAttention
    merge = SlideAttention.switch_to_deploy

    def broken_merge(self):
        merged_before = self.deploy
        merge(self)
        if not merged_before:
            self.merged.bias.data.add_(1e-2)
    monkeypatch.setattr(SlideAttention, 'switch_to_deploy', broken_merge)
    code, _, err = run_main(deploy_main, [SLIDE_DEMO, slide_checkpoint, str(tmp_path / 'd.pth'),
                                          '--shape', '64', '64'], capsys)
    assert code == 1
    assert 'does not reproduce the training form' in err
    assert not (tmp_path / 'd.pth').exists()


def test_benchmark_tool(slide_checkpoint, tmp_path):
    out = tmp_path / 'speed.json'
    proc = run_tool(['tools/analysis/benchmark.py', SLIDE_DEMO, '--checkpoint', slide_checkpoint,
                     '--shape', '96', '128', '--mode', 'whole', 'slide', '--crop-size', '64',
                     '64', '--stride', '48', '48', '--warmup', '1', '--repeats', '3',
                     '--deploy', '--json', str(out)])
    result = json.loads(out.read_text())
    assert (result['shape'], result['batch_size'], result['deploy']) == ([96, 128], 1, True)
    assert result['checkpoint'] == slide_checkpoint and result['device'] == 'cpu'
    # Every call allocates the full-size logits (whole: the resized output; slide: the
    # accumulator), 150 classes x 96 x 128 float32: a floor for the peak it reports.
    logits_mb = 150 * 96 * 128 * 4 / 2**20
    for mode in ('whole', 'slide'):
        r = result['results'][mode]
        assert r['images_per_s_min'] <= r['images_per_s_median'] <= r['images_per_s_max']
        assert len(r['seconds_per_batch']['runs']) == 3 and r['peak_memory_mb'] >= 0
        assert f'{mode}: ' in proc.stdout
        # The figures are the statistics of the recorded runs, and the printed line is theirs.
        times = r['seconds_per_batch']
        runs = times['runs']
        assert all(t > 0 for t in runs)
        assert (times['median_s'], times['min_s'], times['max_s']) == (
            statistics.median(runs), min(runs), max(runs))
        assert r['images_per_s_median'] == 1 / times['median_s']
        assert (r['images_per_s_min'], r['images_per_s_max']) == (1 / max(runs), 1 / min(runs))
        assert r['peak_memory_mb'] >= logits_mb, (mode, r['peak_memory_mb'])
        assert (f'{mode}: {r["images_per_s_median"]:.3f} images/s (median of 3; min '
                f'{r["images_per_s_min"]:.3f}, max {r["images_per_s_max"]:.3f}), peak memory '
                f'{r["peak_memory_mb"]:.1f} MB') in proc.stdout


@pytest.mark.parametrize('megabytes', [64, 128])
def test_peak_memory_is_what_one_call_allocates(megabytes):
    """A call that fills a buffer of ``megabytes`` reports that much, again and again (buffers
    above glibc's 32 MB mmap limit leave the RSS when freed, whatever the process did before)."""
    from vitext.analysis.timing import peak_memory_mb
    numel = megabytes * 2**20 // 4
    for _ in range(2):
        peak = peak_memory_mb(lambda: torch.ones(numel).sum(), 'cpu')
        assert megabytes - 1 < peak < megabytes + 4, peak


def test_peak_memory_counts_memory_the_c_allocator_reuses():
    """glibc set to keep freed blocks (as a library's settings or earlier work in the process can
    leave it): a call reusing blocks an earlier call freed adds nothing to the process's resident
    memory, yet it allocated them (in a fresh interpreter, not to change this one's allocator)."""
    code = ("import ctypes, torch\n"
            "from vitext.analysis.timing import peak_memory_mb\n"
            "libc = ctypes.CDLL('libc.so.6')\n"
            "assert libc.mallopt(-3, 2**30) and libc.mallopt(-1, 2**30)  # mmap, trim thresholds\n"
            "for mb in (64, 64, 128, 128):\n"
            "    print(peak_memory_mb(lambda: torch.ones(mb * 2**20 // 4).sum(), 'cpu'))\n")
    out = run_tool([sys.executable, '-c', code])
    peaks = [float(line) for line in out.stdout.split()]
    assert [round(peak) for peak in peaks] == [64, 64, 128, 128], peaks
    # the profiler's C++ log lines (start, stop; a CUDA build's failed device count) are silenced
    assert 'profiler_start' not in out.stderr and 'gpuGetDeviceCount' not in out.stderr


def test_peak_memory_is_not_hidden_by_garbage_collected_during_the_call():
    """Garbage left in reference cycles before the measured call (here 256 MB, by the warm-up
    call), collected while the call runs (a collection its own allocations trigger), would
    lower the RSS under the call's growth: it is collected before the measurement starts."""
    from vitext.analysis.timing import peak_memory_mb
    numel = 64 * 2**20 // 4
    garbage_made = []

    def call():
        gc.collect()
        buffer = torch.ones(numel)
        if not garbage_made:
            cycle = [torch.ones(256 * 2**20 // 4)]
            cycle.append(cycle)
            garbage_made.append(True)
        return buffer.sum()

    assert 63 < peak_memory_mb(call, 'cpu') < 68


def broadcasting_checkpoint(ckpt: str, out: str, kept: float = 0.01,
                            attn_scale: float = 10.) -> str:
    """``ckpt`` (a CB-ViT demo segmentor) set up so that whether Context Broadcasting is on
    decides how alike the tokens entering block 2 are; written to ``out``.

    Every token (class token included) is a permutation of one vector ``v`` (patch embedding
    off, position table rows permuted), so all share their channel mean and spread and block 1's
    norm2 is an exact affine map of them. Block 1 adds nothing through attention, and its MLP
    returns ``-(1 - kept)`` times the token's difference from the channel mean, exactly
    (``GELU(z) - GELU(-z) = z``), plus a bias shared by every token. Without CB the tokens then
    keep ``kept`` of their differences; with CB (output averaged with its mean token) they keep
    ``(1 + kept) / 2``. Later blocks' query/key weights are scaled by ``attn_scale`` so that
    those differences move the attention away from uniform.

    Args:
        ckpt: checkpoint of the CB-ViT demo config.
        out: path of the modified checkpoint.
        kept: the fraction of the token differences block 1 leaves without CB.
        attn_scale: factor on blocks 2.. qkv weights.
    """
    from vitext.checkpoint import safe_load
    checkpoint = safe_load(ckpt)
    state = checkpoint['state_dict']
    generator = torch.Generator().manual_seed(0)
    dim = state['backbone.cls_token'].shape[-1]
    v = torch.linspace(-1, 1, dim)
    sigma = math.sqrt(v.var(unbiased=False) + 1e-6)  # LayerNorm's eps in CB-ViT
    rows = state['backbone.pos_embed'].shape[1]
    eye = torch.eye(dim)
    fc1 = torch.zeros_like(state['backbone.blocks.0.mlp.fc1.weight'])
    fc1[:dim], fc1[dim:2 * dim] = eye, -eye
    fc2 = torch.zeros_like(state['backbone.blocks.0.mlp.fc2.weight'])
    fc2[:, :dim], fc2[:, dim:2 * dim] = -(1 - kept) * sigma * eye, (1 - kept) * sigma * eye
    state.update({
        'backbone.pos_embed': torch.stack([v[torch.randperm(dim, generator=generator)]
                                           for _ in range(rows)])[None],
        'backbone.blocks.0.norm2.weight': torch.ones(dim),
        'backbone.blocks.0.norm2.bias': torch.zeros(dim),
        'backbone.blocks.0.mlp.fc1.weight': fc1, 'backbone.blocks.0.mlp.fc2.weight': fc2,
        'backbone.blocks.0.mlp.fc2.bias': torch.randn(dim, generator=generator)})
    for key in ('backbone.cls_token', 'backbone.patch_embed.proj.weight',
                'backbone.patch_embed.proj.bias', 'backbone.blocks.0.attn.proj.weight',
                'backbone.blocks.0.attn.proj.bias', 'backbone.blocks.0.mlp.fc1.bias'):
        state[key] = torch.zeros_like(state[key])
    for key in state:
        if key.startswith('backbone.blocks.') and key.endswith('.attn.qkv.weight') and \
                not key.startswith('backbone.blocks.0.'):
            state[key] = state[key] * attn_scale
    torch.save(checkpoint, out)
    return out


def test_attention_entropy_tool(mini_checkpoint, ade_root, tmp_path, monkeypatch):
    """The tool shows CB lowering the entropy where it must: on a trained checkpoint set up so
    that block 1 leaves the tokens 1 % of their differences without CB and 50.5 % with it
    (``broadcasting_checkpoint``), the later blocks attend less uniformly with CB."""
    ckpt = broadcasting_checkpoint(str(mini_checkpoint(CB_DEMO)), str(tmp_path / 'cb.pth'))
    work = tmp_path / 'entropy'
    # run as ``python TOOL ARGS`` would, in this process: no interpreter's imports to wait for
    tool = osp.join(ROOT, 'tools/analysis/attention_entropy.py')
    monkeypatch.setattr(sys, 'argv', [tool, CB_DEMO, ckpt, '--num-images', '4', '--work-dir',
                                      str(work), '--cfg-options', *tiny_seg_options(ade_root)])
    runpy.run_path(tool, run_name='__main__')
    result = json.loads((work / 'attention_entropy.json').read_text())
    side = math.isqrt(result['tokens'] - 1)  # a grid of patches + the class token
    assert result['images'] == 4 and side > 1 and side * side == result['tokens'] - 1
    curves = result['entropy_nats']
    assert list(curves) == ['with CB', 'without CB (same weights, CB off)']
    for values in curves.values():
        assert len(values) == 4
        assert all(0 < v <= math.log(result['tokens']) + 1e-6 for v in values)
    assert (work / 'attention_entropy.png').stat().st_size > 0
    with_cb, without_cb = curves.values()
    # Block 1 attends before any CB: one computation on the same tokens.
    assert with_cb[0] == pytest.approx(without_cb[0], abs=1e-6)
    # Blocks 2-4, measured: 5.08, 5.00, 5.24 nats with CB; 5.549 each without, the uniform
    # attention's log(257) to 1e-4 (summation order moves these by about 1e-6).
    for layer in range(1, 4):
        assert with_cb[layer] < without_cb[layer] - 0.1, (layer, curves)


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
