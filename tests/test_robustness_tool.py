"""tools/robustness.py end to end on a tiny checkpoint trained on synthetic ADE20K."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import (DEMO_DET, DEMO_SEG, ROOT, det_options, last_logged, run_tool,
                      tiny_seg_options)


@pytest.fixture(scope='module')
def checkpoint(seg_demo_run):
    return str(seg_demo_run / 'iter_2.pth')


def robustness_cmd(ade_root, ckpt, work, *extra):
    return ['tools/robustness.py', DEMO_SEG, ckpt, '--work-dir', str(work), *extra,
            '--cfg-options', *tiny_seg_options(ade_root)]


SUITE = ('--suite', 'occlusion,fgsm,pgd,corruptions', '--eps', '0', '4', '--pgd-steps', '2',
         '--corruptions', 'gaussian_noise', 'fog', '--severities', '1', '5')


@pytest.fixture(scope='module')
def suite_run(ade_root, checkpoint, tmp_path_factory):
    """tools/robustness.py with SUITE on the checkpoint: (work dir, CompletedProcess). Read
    only: a test that runs the tool into it again copies it."""
    work = tmp_path_factory.mktemp('suite')
    return work, run_tool(robustness_cmd(ade_root, checkpoint, work, *SUITE))


def test_suite_report(suite_run):
    work, proc = suite_run
    data = json.loads((work / 'robustness.json').read_text())
    results = data['results']
    assert list(results) == ['clean', 'occlusion', 'fgsm/eps=0', 'fgsm/eps=4', 'pgd/eps=0',
                             'pgd/eps=4', 'gaussian_noise/1', 'gaussian_noise/5', 'fog/1',
                             'fog/5']
    clean = results['clean']['mIoU']
    assert results['fgsm/eps=0']['mIoU'] == clean and results['pgd/eps=0']['mIoU'] == clean
    assert results['clean']['drop'] == 0
    corrupted = [results[k]['mIoU'] for k in results if '/' in k and k.split('/')[0] in
                 ('gaussian_noise', 'fog')]
    assert data['summary']['mPC'] == pytest.approx(sum(corrupted) / 4, abs=1e-3)
    assert (work / 'robustness.png').stat().st_size > 0
    assert '| occlusion |' in (work / 'robustness.md').read_text()
    assert 'mPC' in proc.stdout


def test_resumes_after_kill(ade_root, checkpoint, tmp_path):
    cmd = robustness_cmd(ade_root, checkpoint, tmp_path, '--suite', 'corruptions',
                         '--corruptions', 'gaussian_noise', 'shot_noise', 'fog', 'contrast',
                         '--severities', '1', '2', '3')
    env_proc = subprocess.Popen([sys.executable] + cmd, cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL,
                                env={**__import__('os').environ, 'PYTHONPATH': ROOT})
    out = tmp_path / 'robustness.json'
    deadline = time.time() + 300
    while time.time() < deadline:
        if out.exists():  # written atomically: never caught mid-write
            if len(json.loads(out.read_text())['results']) >= 2:
                break
        time.sleep(0.2)
    env_proc.send_signal(signal.SIGKILL)
    env_proc.wait()
    partial = json.loads(out.read_text())['results']
    assert 2 <= len(partial) < 13, len(partial)

    proc = run_tool(cmd)
    assert f'resuming: {len(partial)} setting(s) already' in proc.stdout + proc.stderr
    final = json.loads(out.read_text())['results']
    assert len(final) == 13
    for key, value in partial.items():
        assert final[key]['mIoU'] == value['mIoU']


def test_attacks_refused_for_detection(tmp_path):
    from vitext.evaluation.robustness import plan_settings
    with pytest.raises(ValueError, match='segmentation configs only'):
        plan_settings(['fgsm'], [1], [1], ['fog'], 'mmdet')
    with pytest.raises(ValueError, match="unknown suite"):
        plan_settings(['rain'], [1], [1], ['fog'], 'mmseg')


def test_detection_checkpoint_occlusion_and_corruptions(mask_rcnn_run, coco_root, tmp_path):
    """Detectors: box/mask AP instead of mIoU (the attacks need a segmentation loss)."""
    work = tmp_path / 'robust'
    proc = run_tool(['tools/robustness.py', DEMO_DET, str(mask_rcnn_run / 'epoch_1.pth'),
                     '--suite', 'occlusion,corruptions', '--corruptions', 'fog', '--severities',
                     '2', '--work-dir', str(work), '--cfg-options', *det_options(coco_root)])
    results = json.loads((work / 'robustness.json').read_text())['results']
    assert list(results) == ['clean', 'occlusion', 'fog/2']
    for setting in results.values():
        assert 0 <= setting['coco/bbox_mAP'] <= 1 and 'coco/segm_mAP' in setting
    # The clean setting is the runner's own evaluation of that checkpoint (the validation that
    # tools/train.py ran after epoch 1, on the same images).
    validation = last_logged(mask_rcnn_run, 'coco/bbox_mAP')
    for metric in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP'):
        assert results['clean'][metric] == pytest.approx(validation[metric]), metric
    assert '| setting | coco/bbox_mAP |' in proc.stdout


def test_interrupted_write_keeps_finished_settings(tmp_path):
    """robustness.json used to be rewritten in place: a kill at 0 bytes lost every setting."""
    from mmengine.config import Config
    from vitext.evaluation.robustness import load_saved_results, run_identity
    ckpt = tmp_path / 'iter_2.pth'
    ckpt.write_bytes(b'weights')
    identity = run_identity(Config(dict(model=dict(type='M'))), str(ckpt), dict(seed=0))
    out = tmp_path / 'robustness.json'
    from vitext.atomic_files import atomic_write
    atomic_write(str(out), json.dumps(dict(run=identity, results={'clean': {'mIoU': 5.0}})))
    child = ('import os, signal\nfrom vitext.atomic_files import atomic_path\n'
             f'with atomic_path({str(out)!r}) as tmp:\n'
             '    open(tmp, "w").close()\n'  # caught at 0 bytes
             '    os.kill(os.getpid(), signal.SIGKILL)\n')
    proc = subprocess.run([sys.executable, '-c', child], env={**os.environ, 'PYTHONPATH': ROOT})
    assert proc.returncode == -signal.SIGKILL
    assert load_saved_results(str(out), identity) == {'clean': {'mIoU': 5.0}}


def test_results_of_another_checkpoint_are_not_reused(tmp_path):
    from mmengine.config import Config
    from vitext.evaluation.robustness import (ResultsMismatchError, load_saved_results,
                                              run_identity)
    cfg = Config(dict(model=dict(type='M')))
    ckpt = tmp_path / 'iter_4.pth'
    ckpt.write_bytes(b'weights of iter 4')
    out = tmp_path / 'robustness.json'
    out.write_text(json.dumps(dict(run=run_identity(cfg, str(ckpt), {}), results={'clean': {}})))
    assert load_saved_results(str(out), run_identity(cfg, str(ckpt), {})) == {'clean': {}}
    other = tmp_path / 'iter_2.pth'
    other.write_bytes(b'weights of iter 2')
    with pytest.raises(ResultsMismatchError, match=r"holds results of another run \(checkpoint: "
                       r"'.*iter_4.pth' there, '.*iter_2.pth' now"):
        load_saved_results(str(out), run_identity(cfg, str(other), {}))
    ckpt.write_bytes(b'weights of iter 4, retrained')  # same path, new file
    with pytest.raises(ResultsMismatchError, match='checkpoint_sha256'):
        load_saved_results(str(out), run_identity(cfg, str(ckpt), {}))
    with pytest.raises(ResultsMismatchError, match='config_sha256'):
        load_saved_results(str(out), run_identity(Config(dict(model=dict(type='N'))),
                                                  str(ckpt), {}))
    out.write_text(json.dumps(dict(checkpoint=str(ckpt), results={'clean': {}})))  # old format
    with pytest.raises(ResultsMismatchError, match='without a record of their checkpoint'):
        load_saved_results(str(out), run_identity(cfg, str(ckpt), {}))


def test_results_of_other_weights_with_the_same_size_and_time_are_not_reused(tmp_path):
    """The checkpoint was known by its path, size and modification time: other weights of the
    same size written to the same path, the time set back, reused the old results."""
    from mmengine.config import Config
    from vitext.evaluation.robustness import (ResultsMismatchError, load_saved_results,
                                              run_identity)
    cfg = Config(dict(model=dict(type='M')))
    ckpt = tmp_path / 'iter_4.pth'
    ckpt.write_bytes(b'weights of iter 4')
    written = ckpt.stat()
    out = tmp_path / 'robustness.json'
    identity = run_identity(cfg, str(ckpt), {})
    out.write_text(json.dumps(dict(run=identity, results={'clean': {'mIoU': 5.0}})))
    ckpt.write_bytes(b'weights of iter 8')
    os.utime(ckpt, ns=(written.st_atime_ns, written.st_mtime_ns))
    with pytest.raises(ResultsMismatchError, match=r'holds results of another run \('
                       r'checkpoint_sha256: .* there, .* now\)'):
        load_saved_results(str(out), run_identity(cfg, str(ckpt), {}))
    ckpt.write_bytes(b'weights of iter 4')
    assert load_saved_results(str(out), run_identity(cfg, str(ckpt), {})) == {
        'clean': {'mIoU': 5.0}}
    # Results recorded under the size and time alone are not taken for this content.
    old = {k: v for k, v in identity.items() if k != 'checkpoint_sha256'}
    old.update(checkpoint_size=written.st_size, checkpoint_mtime_ns=written.st_mtime_ns)
    out.write_text(json.dumps(dict(run=old, results={'clean': {'mIoU': 5.0}})))
    with pytest.raises(ResultsMismatchError, match=r'checkpoint_sha256: None there'):
        load_saved_results(str(out), run_identity(cfg, str(ckpt), {}))


def test_results_file_too_deep_to_read_is_named(tmp_path):
    """Python's RecursionError escaped without the file's name."""
    from mmengine.config import Config
    from vitext.evaluation.robustness import (ResultsMismatchError, load_saved_results,
                                              run_identity)
    ckpt = tmp_path / 'iter_2.pth'
    ckpt.write_bytes(b'weights')
    out = tmp_path / 'robustness.json'
    out.write_text('{"results": ' + '[' * 5000 + ']' * 5000 + '}')
    with pytest.raises(ResultsMismatchError, match=f'^{out} is not valid JSON \\(maximum '
                       'recursion depth exceeded'):
        load_saved_results(str(out), run_identity(Config(dict(model=dict(type='M'))),
                                                  str(ckpt), {}))


def test_results_path_that_is_a_directory(tmp_path):
    from mmengine.config import Config
    from vitext.evaluation.robustness import (ResultsMismatchError, load_saved_results,
                                              run_identity)
    ckpt = tmp_path / 'iter_2.pth'
    ckpt.write_bytes(b'weights')
    out = tmp_path / 'robustness.json'
    out.mkdir()
    with pytest.raises(ResultsMismatchError, match=f'^{out} is a directory, where the results '
                       'file belongs'):
        load_saved_results(str(out), run_identity(Config(dict(model=dict(type='M'))),
                                                  str(ckpt), {}))


def test_second_checkpoint_into_same_work_dir_refused(ade_root, checkpoint, suite_run,
                                                      tmp_path):
    """Suite for iter_4 then for iter_2 into one work dir used to report iter_4's numbers. The
    first run is the shared one (a copy of its work dir)."""
    work = shutil.copytree(suite_run[0], tmp_path / 'robust')
    first = (work / 'robustness.json').read_text()
    other = shutil.copy(checkpoint, tmp_path / 'iter_other.pth')
    proc = run_tool(robustness_cmd(ade_root, other, work, *SUITE), check=False)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f'robustness.py: {work / "robustness.json"} holds results of '
                           "another run (checkpoint: "), last
    assert "iter_other.pth' now" in last and 'Use another --work-dir' in last
    assert (work / 'robustness.json').read_text() == first
