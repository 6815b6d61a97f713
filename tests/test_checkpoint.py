"""Safe checkpoint loading (torch >= 2.6 weights_only) through mmengine's own loaders."""
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner import CheckpointLoader, load_checkpoint

import vitext  # noqa: F401  (installs the safe loader)
from conftest import HELPERS, ROOT
from vitext.checkpoint import UnsafeCheckpointError, safe_load

sys.path.insert(0, HELPERS)  # hostile_checkpoints runs in subprocesses from there too
import hostile_checkpoints  # noqa: E402


def mmengine_style_checkpoint():
    """What mmengine's Runner.save_checkpoint writes: tensors + meta with a message hub."""
    buf = HistoryBuffer()
    buf.update(np.float64(0.5))
    buf.update(np.float64(0.25))
    return dict(
        meta=dict(epoch=0, iter=4, seed=0, mmengine_version='0.10.7',
                  message_hub=dict(log_scalars={'train/loss': buf},
                                   runtime_info={'iter': np.int64(4), 'lr': np.float32(0.1)}),
                  dataset_meta=dict(classes=('a', 'b'), palette=[[1, 2, 3], [4, 5, 6]])),
        state_dict={'weight': torch.ones(2, 2)},
        optimizer={'state': {0: {'step': torch.tensor(4.0), 'exp_avg': torch.zeros(2)}},
                   'param_groups': [{'lr': 0.1, 'betas': (0.9, 0.999), 'params': [0]}]})


class Evil:
    def __reduce__(self):
        return (os.system, ('touch /tmp/vitext_pwned',))


class Foreign:
    pass


class GetattrEscape:
    """getattr on an allow-listed class beyond the statistics methods mmengine pickles."""

    def __reduce__(self):
        return (getattr, (HistoryBuffer, '__init__'))


def test_mmengine_checkpoint_loads_with_weights_only(tmp_path):
    path = str(tmp_path / 'ckpt.pth')
    torch.save(mmengine_style_checkpoint(), path)
    ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    hub = ckpt['meta']['message_hub']
    assert isinstance(hub['log_scalars']['train/loss'], HistoryBuffer)
    assert hub['log_scalars']['train/loss'].mean() == pytest.approx(0.375)
    assert hub['runtime_info']['iter'] == 4
    model = torch.nn.Linear(2, 2, bias=False)
    load_checkpoint(model, path)
    assert torch.equal(model.weight, torch.ones(2, 2))


def test_arbitrary_code_is_refused(tmp_path):
    path = str(tmp_path / 'evil.pth')
    if os.path.exists('/tmp/vitext_pwned'):
        os.remove('/tmp/vitext_pwned')
    torch.save({'state_dict': {}, 'payload': Evil()}, path)
    with pytest.raises(UnsafeCheckpointError) as err:
        CheckpointLoader.load_checkpoint(path, map_location='cpu')
    assert path in str(err.value) and 'system' in str(err.value)
    assert not os.path.exists('/tmp/vitext_pwned')


def test_foreign_object_named(tmp_path):
    path = str(tmp_path / 'foreign.pth')
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'extra': Foreign()}, path)
    with pytest.raises(pickle.UnpicklingError, match=r'Foreign.*allow-list'):
        safe_load(path)


def test_getattr_is_limited_to_history_buffer_statistics(tmp_path):
    path = str(tmp_path / 'getattr.pth')
    torch.save({'x': GetattrEscape()}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"getattr\(HistoryBuffer, '__init__'\)"):
        safe_load(path)


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        safe_load(str(tmp_path / 'nope.pth'))
    bad = tmp_path / 'garbage.pth'
    bad.write_bytes(b'not a checkpoint at all')
    with pytest.raises(RuntimeError, match='garbage.pth'):
        safe_load(str(bad))


def test_safetensors(tmp_path):
    from safetensors.torch import save_file
    path = str(tmp_path / 'w.safetensors')
    save_file({'weight': torch.arange(4.).reshape(2, 2)}, path)
    state = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    assert torch.equal(state['weight'], torch.arange(4.).reshape(2, 2))


class PopenPayload:
    def __reduce__(self):
        return (subprocess.Popen, (['touch', '/tmp/vitext_pwned'],))


def real_message_hub(name):
    """mmengine's MessageHub as a run leaves it: losses (numpy and Python floats), numpy
    runtime info, and an empty HistoryBuffer (a scalar that was never updated)."""
    hub = MessageHub.get_instance(name, log_scalars={'val/never_updated': HistoryBuffer()},
                                  resumed_keys={'val/never_updated': True})
    hub.update_scalar('train/loss', np.float64(0.5))
    hub.update_scalar('train/loss', 0.25)
    hub.update_scalar('train/acc', np.float32(0.75), count=2)
    hub.update_info('iter', np.int64(4))
    hub.update_info('lr', np.float32(0.1))
    hub.update_info('flags', np.array([True, False]))
    hub.update_info('big_endian', np.arange(3, dtype='>f4'))
    hub.update_info('fortran', np.asfortranarray(np.arange(6.).reshape(2, 3)))
    hub.update_info('long', np.arange(2000, dtype=np.int64))
    hub.update_info('complex', np.complex128(1 + 2j))
    return hub


def test_numpy_objects_mmengine_writes_load_as_plain_numpy(tmp_path):
    """Real MessageHub/HistoryBuffer state, saved as mmengine's save_checkpoint does, loads with
    every array and scalar equal to the saved one, as plain numpy objects."""
    from mmengine.runner.checkpoint import save_checkpoint
    hub = real_message_hub('test_numpy_objects')
    path = str(tmp_path / 'hub.pth')
    save_checkpoint(dict(meta=dict(message_hub=hub.state_dict()), state_dict={}), path)
    loaded = CheckpointLoader.load_checkpoint(path, map_location='cpu')['meta']['message_hub']
    restored = MessageHub('restored')
    restored.load_state_dict(loaded)
    for key, buf in hub.log_scalars.items():
        got = restored.log_scalars[key]
        for saved, back in zip(buf.data, got.data):
            assert type(back) is np.ndarray and back.dtype == saved.dtype
            np.testing.assert_array_equal(back, saved)
    assert restored.log_scalars['train/loss'].mean() == pytest.approx(0.375)
    assert restored.log_scalars['val/never_updated'].data[0].size == 0
    for key, value in hub.runtime_info.items():
        back = restored.get_info(key)
        numpy_own = pickle.loads(pickle.dumps(value, protocol=2))  # e.g. byte order made native
        assert type(back) is type(value), key
        np.testing.assert_array_equal(back, value)
        if isinstance(value, np.ndarray):
            assert back.dtype.str == numpy_own.dtype.str, key
            assert back.flags.f_contiguous == value.flags.f_contiguous, key


def test_empty_numpy_array_loads(tmp_path):
    """pickle protocol 2 writes the data of an empty array as bytes(): an empty HistoryBuffer
    (real mmengine object) loads; bytes with an argument stays refused (payload test)."""
    path = str(tmp_path / 'empty.pth')
    torch.save(dict(buf=HistoryBuffer(), empty=np.zeros((0, 3), np.float32)), path)
    loaded = safe_load(path)
    assert loaded['buf'].data[0].size == 0 and loaded['empty'].shape == (0, 3)


def test_arrays_loaded_by_torch_directly_pickle_as_plain_numpy(tmp_path):
    """torch.load without safe_load hands out the checked array type; re-saving it writes a
    plain ndarray, loadable without vitext."""
    path = str(tmp_path / 'a.pth')
    torch.save(dict(a=np.arange(4.)), path)
    arr = torch.load(path, weights_only=True)['a']
    assert isinstance(arr, np.ndarray)
    data = pickle.dumps(arr, protocol=2)
    assert b'vitext' not in data
    np.testing.assert_array_equal(pickle.loads(data), np.arange(4.))


def load_in_subprocess(paths, timeout=600):
    """hostile_checkpoints.load_all in a fresh interpreter: a crash (SIGSEGV) fails the test
    with the attempt it happened in, instead of killing pytest."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, HELPERS]))
    proc = subprocess.run([sys.executable, '-m', 'hostile_checkpoints', json.dumps(paths)],
                          env=env, capture_output=True, text=True, timeout=timeout)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith('{')]
    if proc.returncode != 0:
        last = lines[-1] if lines else None
        raise AssertionError(f'loading crashed (exit {proc.returncode}) at {last}\n'
                             f'{proc.stderr[-3000:]}')
    return [line for line in lines if 'started' not in line]


def check_refused(results, paths, named=hostile_checkpoints.NAMED):
    """Each of ``paths`` (payload name -> file) refused by all four loaders, naming the file
    and what ``named`` says for the payload, in one line."""
    assert len(results) == 4 * len(paths)
    named = {path: named[name] for name, path in paths.items()}
    for result in results:
        assert result['error'] == 'UnsafeCheckpointError', result
        assert result['path'] in result['message'], result
        assert named[result['path']] in result['message'], result
        assert '\n' not in result['message'], result


def test_hostile_numpy_payloads_are_refused(tmp_path):
    """Every payload (raw pickle files) on safe_load, CheckpointLoader, _load_checkpoint and
    load_checkpoint: refused, naming the file and the object, no crash."""
    paths = hostile_checkpoints.write_all(str(tmp_path))
    check_refused(load_in_subprocess(list(paths.values())), paths)


def test_pickle_bombs_are_refused_at_once(tmp_path):
    """Shared tuples or lists expanding to 2**60 elements (also inside a HistoryBuffer),
    bytearray(2_000_000_000) and lists nested 5000 deep, as the checkpoint of a legacy torch
    file and inside a real torch.save zip's dict: every loader refuses each in well under a second, naming the file
    (they hung, filled memory, or raised RecursionError)."""
    real = io.BytesIO()
    torch.save(mmengine_style_checkpoint(), real)
    written = hostile_checkpoints.write_bombs(str(tmp_path), real.getvalue())
    results = load_in_subprocess([path for paths in written for path in paths.values()],
                                 timeout=120)
    for paths in written:
        check_refused([r for r in results if r['path'] in paths.values()], paths)
    assert max(result['seconds'] for result in results) < 1, results


class TensorView:
    """Pickles as the tensor torch.save would write for a view of ``base``'s storage."""

    def __init__(self, base, size, stride):
        self.base, self.size, self.stride = base, size, stride

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, (self.base.untyped_storage(), 0, self.size,
                                                  self.stride, False, OrderedDict()))


# Tensors torch's weights-only unpickler accepts, saved under 'weight' (so that load_checkpoint
# copies them into a Linear(1, 1)), and what the refusal says.
UNFIT_TENSORS = {
    # An index far outside the (1, 1) tensor: arithmetic on it can crash Python.
    'sparse-coo-out-of-range': (
        lambda: torch.sparse_coo_tensor(torch.tensor([[0, 1 << 30], [0, 1 << 30]]),
                                        torch.ones(2), (1, 1), check_invariants=False),
        "['weight'] is a sparse_coo tensor"),
    'sparse-csr': (lambda: torch.eye(1).to_sparse_csr(), "['weight'] is a sparse_csr tensor"),
    'nested': (lambda: torch.nested.nested_tensor([torch.ones(1)]),
               "['weight'] is a nested tensor"),
    'meta': (lambda: torch.empty(1, 1, device='meta'), "['weight'] is a meta tensor"),
    # 2**30 elements over one float: copying it allocates 4 GiB.
    'zero-stride': (lambda: torch.ones(1).expand(1 << 30, 1),
                    '1073741824 elements over a storage of 1'),
    'beyond-storage': (lambda: TensorView(torch.ones(1, dtype=torch.uint8), (1, 5), (5, 1)),
                       'needs 5 elements of its storage'),
}


def test_unfit_tensors_are_refused_by_key(tmp_path):
    """Sparse, nested, meta tensors and views beyond or repeating their storage: refused by
    every loader, naming the file and the key, before anything uses them (a crash fails the
    test from its subprocess)."""
    paths = {}
    for name, (make, _) in UNFIT_TENSORS.items():
        paths[name] = str(tmp_path / f'{name}.pth')
        torch.save({'weight': make()}, paths[name])
    check_refused(load_in_subprocess(list(paths.values())), paths,
                  {name: said for name, (_, said) in UNFIT_TENSORS.items()})


def test_views_and_shared_storages_load(tmp_path):
    """What torch.save writes for real models loads: tied weights, strided views, a broadcast
    view, an empty tensor."""
    base = torch.arange(12.).reshape(3, 4)
    state = dict(a=base, tied=base, view=base[1:, ::2], row=torch.ones(4).expand(3, 4),
                 empty=torch.zeros(0, 5))
    path = str(tmp_path / 'views.pth')
    torch.save(state, path)
    loaded = safe_load(path)
    for key, tensor in state.items():
        assert torch.equal(loaded[key], tensor), key


def test_popen_named_by_its_python3_name(tmp_path):
    path = str(tmp_path / 'popen.pth')
    torch.save({'x': PopenPayload()}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"'subprocess\.Popen'") as err:
        safe_load(path)
    assert 'commands' not in str(err.value)


def test_unreadable_pickle_gives_no_weights_only_advice(tmp_path):
    path = tmp_path / 'bad.pth'
    path.write_bytes(b'\x80\x02}0}.')  # POP: an opcode torch's unpickler does not read
    with pytest.raises(RuntimeError, match='bad.pth') as err:
        safe_load(str(path))
    message = str(err.value)
    assert 'weights_only' not in message and '\n' not in message


def test_directory_is_not_called_missing(tmp_path):
    with pytest.raises(IsADirectoryError, match=r"'.*' is a directory"):
        CheckpointLoader.load_checkpoint(str(tmp_path), map_location='cpu')


def test_pickle_named_safetensors(tmp_path):
    path = str(tmp_path / 'w.safetensors')
    torch.save({'weight': torch.zeros(2)}, path)
    with pytest.raises(RuntimeError) as err:
        safe_load(path)
    message = str(err.value)
    assert 'w.safetensors' in message and 'rename it to .pth' in message and '\n' not in message


@pytest.fixture
def hostile_file(tmp_path):
    """A checkpoint whose payload creates a marker file when unpickled without weights_only."""
    marker = tmp_path / 'pwned'

    class Touch:
        def __reduce__(self):
            return (os.system, (f'touch {marker}',))

    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'x': Touch()}, str(path))
    return path, marker


def test_open_mmlab_scheme_is_safe_with_force_no_weights_only(hostile_file, tmp_path,
                                                             monkeypatch):
    """open-mmlab://name mapped by $MMENGINE_HOME/open_mmlab.json to a local file, with
    TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1: refused, the payload does not run."""
    path, marker = hostile_file
    home = tmp_path / 'mmengine_home'
    home.mkdir()
    shutil.copy(path, home / 'evil.pth')
    (home / 'open_mmlab.json').write_text(json.dumps({'evil_model': 'evil.pth'}))
    monkeypatch.setenv('MMENGINE_HOME', str(home))
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    from mmengine.runner.checkpoint import _load_checkpoint, load_from_openmmlab
    for load in (lambda: _load_checkpoint('open-mmlab://evil_model', map_location='cpu'),
                 lambda: load_from_openmmlab('openmmlab://evil_model', map_location='cpu'),
                 lambda: CheckpointLoader.load_checkpoint(str(path), map_location='cpu')):
        with pytest.raises(UnsafeCheckpointError, match=r'evil\.pth.*posix\.system'):
            load()
    assert not marker.exists()


@pytest.mark.parametrize('url', ['https://example.com/models/evil.pth',
                                 'http://example.com/evil.pth', 'torchvision://resnet18',
                                 'mmcls://resnet18'])
def test_url_schemes_load_the_download_safely(url, hostile_file, tmp_path, monkeypatch):
    """The download (torch.hub's, replaced here by a copy of a local file: no network) is loaded
    by vitext's loader, not by torch.hub's load_state_dict_from_url(weights_only=False)."""
    path, marker = hostile_file
    downloads = []

    def copy_instead_of_download(src_url, dst, *args, **kwargs):
        downloads.append(src_url)
        shutil.copy(path, dst)

    monkeypatch.setattr(torch.hub, 'download_url_to_file', copy_instead_of_download)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    with pytest.raises(UnsafeCheckpointError, match=r'torch_home.*posix\.system'):
        CheckpointLoader.load_checkpoint(url, map_location='cpu')
    assert len(downloads) == 1 and not marker.exists()


def test_every_scheme_is_vitext_s():
    """Each registered scheme's loader is vitext's, or mmengine's torchvision/mmcls name
    resolution that hands its URL to the (replaced) load_from_http."""
    import mmengine.runner.checkpoint as mmengine_checkpoint
    import vitext.checkpoint.mmengine_loaders as safe
    delegating = {mmengine_checkpoint.load_from_torchvision, mmengine_checkpoint.load_from_mmcls}
    for prefix, loader in CheckpointLoader._schemes.items():
        assert loader.__module__ == safe.__name__ or loader in delegating, prefix
    assert mmengine_checkpoint.load_from_http is safe.load_from_http


def test_path_split_at_a_comma_by_cfg_options_is_named():
    """mmengine's DictAction turns ``checkpoint=/runs/a,b.pth`` into a list."""
    import argparse

    from mmengine.config import DictAction
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    value = parser.parse_args(['--cfg-options', 'checkpoint=/runs/a,b.pth']).cfg_options
    with pytest.raises(TypeError, match=r"got list \['/runs/a', 'b\.pth'\].*commas"):
        safe_load(value['checkpoint'])


@pytest.mark.parametrize('dtype', [torch.bool, torch.int64, torch.complex64])
def test_weights_of_a_non_float_dtype_are_refused_by_key(dtype):
    """All-bool, integer or complex weights were cast into the float parameters and scored."""
    from vitext.models.weights import CheckpointMismatchError, load_state_dict_exactly
    model = torch.nn.Linear(2, 2)
    state = dict(weight=torch.ones(2, 2, dtype=dtype), bias=torch.zeros(2))
    with pytest.raises(CheckpointMismatchError,
                       match=rf'dtype mismatch: weight: checkpoint {dtype} vs model '
                             r'torch\.float32$'):
        load_state_dict_exactly(model, state, "checkpoint 'w.pth'")


def test_weights_of_another_float_dtype_load():
    from vitext.models.weights import load_state_dict_exactly
    model = torch.nn.Linear(2, 2)
    state = dict(weight=torch.ones(2, 2, dtype=torch.float16),
                 bias=torch.zeros(2, dtype=torch.bfloat16))
    load_state_dict_exactly(model, state, "checkpoint 'w.pth'")
    assert torch.equal(model.weight, torch.ones(2, 2))
