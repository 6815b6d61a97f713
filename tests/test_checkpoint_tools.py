"""Checkpoints through the tools, with a real training checkpoint (CB-ViT demo, 2 iterations):
hostile payloads spliced into it are refused on every loading path before the runner's log, and
a checkpoint that does not fit the model stops tools/test.py, tools/train.py (load_from) and
tools/robustness.py with the keys listed."""
import os.path as osp

import numpy as np
import pytest
import torch

from conftest import DEMO_SEG, ROOT, run_tool, tiny_seg_options
from test_checkpoint import check_refused, hostile_checkpoints, load_in_subprocess

CBVIT_DEMO = osp.join(ROOT, 'configs/demo/upernet_cbvit-mini_4xb8-120it_synthetic-ade20k-128x128.py')
AFT_DEMO = osp.join(ROOT, 'configs/demo/upernet_aftconv-mini_4xb8-120it_synthetic-ade20k-128x128.py')
# A run that stopped at its checkpoint check prints a few lines; the runner's start alone
# (environment, config dump) prints hundreds.
FEW_LINES = 40


@pytest.fixture(scope='module')
def cbvit_checkpoint(mini_checkpoint):
    return mini_checkpoint(CBVIT_DEMO)


def data_options(ade_root):
    return {f'{loader}.dataset.data_root': ade_root
            for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')}


def test_real_training_checkpoint_loads_plain(cbvit_checkpoint):
    from vitext.checkpoint import safe_load
    ckpt = safe_load(str(cbvit_checkpoint))
    scalars = ckpt['message_hub']['log_scalars']  # where mmengine's Runner puts it
    assert scalars and all(type(a) is np.ndarray for buf in scalars.values() for a in buf.data)
    assert all(isinstance(v, torch.Tensor) for v in ckpt['state_dict'].values())


def test_payloads_spliced_into_a_real_checkpoint_are_refused(cbvit_checkpoint, tmp_path):
    paths = hostile_checkpoints.write_all(str(tmp_path), cbvit_checkpoint.read_bytes())
    check_refused(load_in_subprocess(list(paths.values())), paths)


@pytest.mark.parametrize('tool', ['test', 'train', 'robustness'])
def test_tools_refuse_a_spliced_checkpoint_before_the_runner_starts(
        tool, cbvit_checkpoint, ade_root, tmp_path):
    hostile = tmp_path / 'iter_2.pth'
    hostile.write_bytes(hostile_checkpoints.spliced(
        cbvit_checkpoint.read_bytes(), hostile_checkpoints.PAYLOADS['object-array-hashed']))
    opts = tiny_seg_options(ade_root, max_iters=1)
    args = {'test': ['tools/test.py', CBVIT_DEMO, str(hostile), '--work-dir', str(tmp_path),
                     '--cfg-options', *opts],
            'train': ['tools/train.py', CBVIT_DEMO, '--work-dir', str(tmp_path),
                      '--cfg-options', *opts, f'load_from={hostile}'],
            'robustness': ['tools/robustness.py', CBVIT_DEMO, str(hostile), '--work-dir',
                           str(tmp_path), '--suite', 'occlusion', '--cfg-options', *opts]}[tool]
    proc = run_tool(args, check=False)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('vitext.checkpoint.UnsafeCheckpointError') and str(hostile) in last
    assert "numpy.dtype('O')" in last
    assert len((proc.stdout + proc.stderr).splitlines()) < FEW_LINES


def test_test_tool_refuses_a_checkpoint_of_another_model(cbvit_checkpoint, ade_root, tmp_path):
    """The issue's case: the AFT demo config evaluated with a CB-ViT checkpoint."""
    proc = run_tool(['tools/test.py', AFT_DEMO, str(cbvit_checkpoint), '--work-dir',
                     str(tmp_path), '--cfg-options', *tiny_seg_options(ade_root)], check=False)
    assert proc.returncode == 1 and not (tmp_path / 'test_results.json').exists()
    err = proc.stderr[proc.stderr.index('CheckpointMismatchError'):]
    assert f"checkpoint '{cbvit_checkpoint}' does not fit EncoderDecoder" in err
    # AFT-conv blocks have attention kernels CB-ViT lacks; CB-ViT has scales AFT lacks.
    assert 'missing in checkpoint: ' in err and 'backbone.' in err and 'not in model: ' in err
    assert len((proc.stdout + proc.stderr).splitlines()) < FEW_LINES


def test_plain_timm_state_dict_is_refused(ade_root, tmp_path):
    import timm

    import vitext.apis
    from vitext.models.weights import CheckpointMismatchError
    path = str(tmp_path / 'vit_tiny.pth')
    torch.save(timm.create_model('vit_tiny_patch16_224', pretrained=False).state_dict(), path)
    with pytest.raises(CheckpointMismatchError) as err:
        vitext.apis.test(AFT_DEMO, path, work_dir=str(tmp_path), cfg_options=data_options(ade_root))
    message = str(err.value)
    assert 'missing in checkpoint: auxiliary_head.' in message and 'backbone.' in message
    assert 'not in model: blocks.0.attn.proj.bias' in message


def test_train_refuses_a_load_from_of_another_model(cbvit_checkpoint, ade_root, tmp_path):
    import vitext.apis
    from vitext.models.weights import CheckpointMismatchError
    with pytest.raises(CheckpointMismatchError, match=r'--load-partial'):
        vitext.apis.train(AFT_DEMO, work_dir=str(tmp_path),
                          cfg_options=dict(data_options(ade_root), load_from=str(cbvit_checkpoint)))
    assert not list(tmp_path.iterdir())  # stopped before the runner made its work dir


def test_train_load_partial_proceeds(cbvit_checkpoint, ade_root, tmp_path):
    """With --load-partial the keys that fit are loaded (mmengine lists the others in its log)
    and training runs."""
    proc = run_tool(['tools/train.py', AFT_DEMO, '--load-partial', '--work-dir', str(tmp_path),
                     '--cfg-options', *tiny_seg_options(ade_root, max_iters=1, ckpt_interval=1),
                     f'load_from={cbvit_checkpoint}'])
    log = proc.stdout + proc.stderr
    assert f'Load checkpoint from {cbvit_checkpoint}' in log
    assert 'unexpected key in source state_dict: backbone.' in log
    assert (tmp_path / 'iter_1.pth').is_file()


def test_robustness_refuses_a_checkpoint_of_another_model(cbvit_checkpoint, ade_root,
                                                          tmp_path):
    proc = run_tool(['tools/robustness.py', AFT_DEMO, str(cbvit_checkpoint), '--suite',
                     'occlusion', '--work-dir', str(tmp_path), '--cfg-options',
                     *tiny_seg_options(ade_root)], check=False)
    assert proc.returncode == 1 and 'CheckpointMismatchError' in proc.stderr
    assert 'does not fit EncoderDecoder' in proc.stderr
    assert not (tmp_path / 'robustness.json').exists()


def test_test_tool_names_a_directory(ade_root, tmp_path):
    proc = run_tool(['tools/test.py', DEMO_SEG, str(tmp_path), '--cfg-options',
                     *tiny_seg_options(ade_root)], check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"IsADirectoryError: checkpoint '{tmp_path}' is a directory, not a checkpoint file "
        '(name a .pth or .safetensors file)')


@pytest.mark.parametrize('conversion,source', [
    ('deit-to-aft', {'encoder.layers.0.weight': torch.ones(2, 2)}),
    ('deit-to-aft', {'head.weight': torch.ones(10, 384)}),  # a classifier alone
    ('swin-to-slide-swin', {}),
], ids=['unknown names', 'classifier only', 'empty'])
def test_convert_tool_refuses_a_source_it_takes_nothing_from(conversion, source, tmp_path,
                                                              capsys):
    """A conversion that took no tensor from the source saved the target's own initialisation
    as if converted, and exited 0."""
    from vitext.cli.convert import main
    src, out = tmp_path / 'src.pth', tmp_path / 'out.pth'
    torch.save(dict(state_dict=source), src)
    with pytest.raises(SystemExit) as exit_info:
        main([conversion, str(src), str(out), '--arch', 'tiny'])
    message = str(exit_info.value.code)
    assert message.startswith(f'{src}: no tensor of the source fits ') and '\n' not in message
    assert not out.exists()
