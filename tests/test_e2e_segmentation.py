"""End to end on synthetic ADE20K: train -> checkpoint -> tools/test.py, through vitext's tools,
mmseg's own train tool, torchrun (2 CPU processes) and after a killed run (--resume)."""
import json
import os
import os.path as osp
import socket

import mmseg
import numpy as np
import torch
from seg_reference import ade_metrics, saved_predictions

from conftest import DEMO_SEG, NO_DROPOUT, run_tool, tiny_seg_options


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return str(s.getsockname()[1])


def test_train_writes_checkpoints(seg_demo_run):
    assert (seg_demo_run / 'iter_2.pth').is_file() and (seg_demo_run / 'iter_4.pth').is_file()
    assert (seg_demo_run / 'last_checkpoint').read_text().strip().endswith('iter_4.pth')


def test_test_tool_reports_miou_per_class(seg_demo_run, ade_root, tmp_path):
    pred_dir = tmp_path / 'pred'
    proc = run_tool(['tools/test.py', DEMO_SEG, str(seg_demo_run / 'iter_4.pth'), '--work-dir',
                     str(tmp_path), '--out', str(pred_dir), '--show-dir', 'vis',
                     '--cfg-options', *tiny_seg_options(ade_root)])
    assert 'mIoU' in proc.stdout and 'per class results' in proc.stdout + proc.stderr
    result = json.loads((tmp_path / 'test_results.json').read_text())
    # The JSON's metrics are those of the predictions it wrote, recomputed here with numpy
    # against the ground-truth PNGs.
    assert len(os.listdir(pred_dir)) == 6
    ref = ade_metrics(saved_predictions(str(pred_dir)), f'{ade_root}/annotations/validation')
    assert result['metrics'] == {key: ref[key] for key in ('aAcc', 'mIoU', 'mAcc')}
    per_class = result['per_class']
    assert len(per_class) == 150 and set(per_class['wall']) == {'IoU', 'Acc'}
    for i, values in enumerate(per_class.values()):  # in the data set's class order
        for key in ('IoU', 'Acc'):
            expected = None if np.isnan(ref[key][i]) else round(float(ref[key][i]), 2)
            assert values[key] == expected, (i, key)
    # Classes never drawn are NaN in mmseg and null here; drawn ones have numbers.
    assert per_class['windowpane'] == {'IoU': None, 'Acc': None}
    assert per_class['sky']['Acc'] is not None
    ious = [v['IoU'] for v in per_class.values() if v['IoU'] is not None]
    assert abs(np.mean(ious) - result['metrics']['mIoU']) < 0.01
    painted = os.listdir(tmp_path / 'vis' / 'vis_data' / 'vis_image')
    assert len(painted) == 6 and all(name.endswith('.png') for name in painted)


def test_test_tool_tta(seg_demo_run, ade_root, tmp_path):
    """--tta feeds the backbone every view of the config's tta_pipeline (6 scales x {plain,
    flipped} per image) and scores the merged predictions."""
    recording = tmp_path / 'recording.py'
    inputs = tmp_path / 'backbone_inputs.json'
    recording.write_text(
        f'_base_ = [{DEMO_SEG!r}]\n'
        "custom_imports = dict(imports=['vitext', 'vitext_test_hooks'], "
        'allow_failed_imports=False)\n'
        f"custom_hooks = [dict(type='RecordBackboneInputsHook', out_file={str(inputs)!r})]\n")
    pred_dir = tmp_path / 'pred'
    run_tool(['tools/test.py', str(recording), str(seg_demo_run / 'iter_4.pth'), '--tta',
              '--work-dir', str(tmp_path), '--out', str(pred_dir),
              '--cfg-options', *tiny_seg_options(ade_root)])
    seen = json.loads(inputs.read_text())
    # 6 validation images of 64x64, resized by 0.5 ... 1.75, each also flipped.
    sides = [int(64 * r) for r in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)]
    assert len(seen) == 6 * 6 * 2
    assert sorted({tuple(v['shape']) for v in seen}) == [(s, s) for s in sides]
    for side in sides:
        views = [v for v in seen if v['shape'] == [side, side]]
        assert len(views) == 12
        flipped = {(v['right'], v['left']) for v in views}  # a flip swaps the border columns
        assert sum((v['left'], v['right']) in flipped for v in views) == 12, side
    result = json.loads((tmp_path / 'test_results.json').read_text())
    ref = ade_metrics(saved_predictions(str(pred_dir)), f'{ade_root}/annotations/validation')
    assert result['metrics'] == {key: ref[key] for key in ('aAcc', 'mIoU', 'mAcc')}


def test_metrics_are_written_as_the_evaluator_rounded_them():
    """mmseg rounds its summary to 2 decimals; under numpy >= 2 the result stays float32, whose
    exact value (9.0600004196167) is not what was printed."""
    from vitext.apis import _to_builtin
    assert _to_builtin(np.float32(9.06)) == 9.06 and _to_builtin(np.float64(0.47)) == 0.47
    assert _to_builtin(torch.tensor(9.06)) == 9.06
    assert _to_builtin(np.int64(3)) == 3 and _to_builtin('x') == 'x'


def test_mmseg_own_train_tool_runs_vitext_config(ade_root, tmp_path):
    tool = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', 'train.py')
    run_tool([tool, DEMO_SEG, '--work-dir', str(tmp_path), '--cfg-options',
              *tiny_seg_options(ade_root, max_iters=2)])
    assert (tmp_path / 'iter_2.pth').is_file()


def test_unknown_checkpoint_path(ade_root, tmp_path):
    proc = run_tool(['tools/test.py', DEMO_SEG, str(tmp_path / 'nope.pth'), '--cfg-options',
                     *tiny_seg_options(ade_root)], check=False)
    assert proc.returncode != 0
    assert "checkpoint file '" in proc.stderr and "nope.pth' does not exist" in proc.stderr


def test_train_tool_missing_data_root(tmp_path):
    proc = run_tool(['tools/train.py', DEMO_SEG, '--work-dir', str(tmp_path), '--cfg-options',
                     f'train_dataloader.dataset.data_root={tmp_path}/nowhere'], check=False)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert 'ConfigError: train_dataloader.dataset.data_root' in last and 'nowhere' in last


def test_resume_after_kill_matches_uninterrupted(seg_demo_run, ade_root, tmp_path):
    """The uninterrupted run is the shared one (same options but for its checkpoint interval,
    which changes no number)."""
    opts = tiny_seg_options(ade_root, max_iters=4, ckpt_interval=2) + NO_DROPOUT

    killing = tmp_path / 'killing.py'
    killing.write_text(
        f'_base_ = [{DEMO_SEG!r}]\n'
        "custom_imports = dict(imports=['vitext', 'vitext_test_hooks'], "
        'allow_failed_imports=False)\n'
        "custom_hooks = [dict(type='KillAfterCheckpointHook', kill_after=2)]\n")
    work = tmp_path / 'killed'
    proc = run_tool(['tools/train.py', str(killing), '--work-dir', str(work), '--cfg-options',
                     *opts], check=False)
    assert proc.returncode == -9, proc.stderr[-3000:]
    assert (work / 'iter_2.pth').is_file() and not (work / 'iter_4.pth').exists()

    proc = run_tool(['tools/train.py', DEMO_SEG, '--work-dir', str(work), '--resume',
                     '--cfg-options', *opts])
    assert 'resumed epoch: 0, iter: 2' in proc.stdout + proc.stderr

    full = torch.load(seg_demo_run / 'iter_4.pth', weights_only=True)
    resumed = torch.load(work / 'iter_4.pth', weights_only=True)
    assert full['meta']['iter'] == resumed['meta']['iter'] == 4
    for key, value in full['state_dict'].items():
        torch.testing.assert_close(resumed['state_dict'][key], value, rtol=1e-5, atol=1e-6)
    full_state, resumed_state = full['optimizer']['state'], resumed['optimizer']['state']
    assert full_state.keys() == resumed_state.keys()
    for idx, state in full_state.items():
        for name, value in state.items():
            torch.testing.assert_close(resumed_state[idx][name], value, rtol=1e-5, atol=1e-6)
    assert full['param_schedulers'] == resumed['param_schedulers']


def test_distributed_two_cpu_processes(ade_root, tmp_path):
    import sys
    proc = run_tool(['bash', 'tools/dist_train.sh', DEMO_SEG, '2', '--work-dir', str(tmp_path),
                     '--cfg-options', *tiny_seg_options(ade_root, max_iters=2)],
                    env={'PORT': free_port(), 'PYTHON': sys.executable})
    assert 'gloo' in proc.stdout + proc.stderr
    assert (tmp_path / 'iter_2.pth').is_file()
