"""benchmarks/bench_deploy.py at a tiny size: the pairs are all recorded, each ratio is the ratio
of the recorded medians, and a runtime that is absent is a row with its reason (no timing is
asserted: this checks the script, not the speed)."""
import importlib.util
import json
import os.path as osp
import sys

import pytest

pytest.importorskip('onnxruntime')
pytest.importorskip('mmdet')

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_bench():
    spec = importlib.util.spec_from_file_location(
        'bench_deploy', osp.join(ROOT, 'benchmarks', 'bench_deploy.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_ratios(runtimes: dict, measured: tuple) -> None:
    """Each measured runtime's ratio is vitext's median over the replaced model's."""
    for runtime in measured:
        entry = runtimes[runtime]
        assert entry['ratio'] == pytest.approx(
            entry['vitext']['median_s'] / entry['replaced']['median_s'], rel=1e-12), runtime
        assert entry['ratio_min'] <= entry['ratio'] <= entry['ratio_max']


def test_quick_run_records_every_pair_and_an_absent_runtime(tmp_path, monkeypatch):
    bench = load_bench()
    monkeypatch.setitem(sys.modules, 'openvino', None)  # import openvino now fails: absent
    bench.main(['--quick', '--threads', '1', '--runtimes', 'eager', 'openvino',
                '--parts', 'backbone', '--out', str(tmp_path)])
    payload = json.loads((tmp_path / 'deploy_cpu.json').read_text())
    assert set(payload['results']) == set(bench.PAIRS)
    assert payload['settings']['size'] == 64
    assert 'load_average_at_start' in payload['environment']
    assert 'load_average_at_end' in payload['environment']
    for name, parts in payload['results'].items():
        assert set(parts) == {'backbone'}, name
        for part, runtimes in parts.items():
            check_ratios(runtimes, ('eager',))
            absent = runtimes['openvino']
            assert 'ratio' not in absent
            for which in ('vitext', 'replaced'):
                assert 'openvino is not installed' in absent[which]['unavailable']
    assert set(payload['targets']) == {f'{n} {r}' for n in bench.PAIRS
                                       for r in ('onnxruntime', 'executorch')}
    assert all(t['status'] == 'not measured' for t in payload['targets'].values())
    assert 'n/a: openvino is not installed' in (tmp_path / 'deploy_cpu.md').read_text()
    assert (tmp_path / 'deploy_cpu.png').stat().st_size > 0


def test_quick_onnxruntime_backbone_and_segmentor(tmp_path):
    bench = load_bench()
    bench.main(['--quick', '--threads', '1', '--pairs', 'slide_pvt_t', '--out', str(tmp_path)])
    payload = json.loads((tmp_path / 'deploy_cpu.json').read_text())
    for part in ('backbone', 'segmentor'):
        check_ratios(payload['results']['slide_pvt_t'][part], ('eager', 'onnxruntime'))
    runtimes = payload['results']['slide_pvt_t']['backbone']
    target = payload['targets']['slide_pvt_t onnxruntime']
    assert target['ratio'] == runtimes['onnxruntime']['ratio']
    assert target['status'] == ('met' if target['ratio'] <= bench.PAIRS['slide_pvt_t'].target
                                else 'missed')
