"""Safe checkpoint loading (torch >= 2.6 weights_only) through mmengine's own loaders."""
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader, load_checkpoint

import vitext  # noqa: F401  (installs the safe loader)
from vitext.checkpoint import UnsafeCheckpointError, safe_load


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
