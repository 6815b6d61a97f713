"""What the pre-run checks cost and touch: they leave the config as it is, look at a bounded
number of data files, and the checkpoint they read is the one the runner loads (read once)."""
import copy
import os
import os.path as osp

import pytest
import torch

from vitext import preflight
from vitext.apis import fill_label_ranges
from vitext.preflight import ConfigError, check_data, load_config

from conftest import DEMO_SEG


def test_check_data_leaves_the_config_as_it_is(ade_root):
    """Checking used to give the pipelines' LoadSegAnnotations their class count in passing;
    that is now ``fill_label_ranges``, named for what it does."""
    cfg = load_config(DEMO_SEG, {'val_dataloader.dataset.data_root': ade_root})
    before = copy.deepcopy(cfg.to_dict())
    check_data(cfg, ('val_dataloader',))
    assert cfg.to_dict() == before
    fill_label_ranges(cfg, ('val_dataloader',))
    loads = [t for t in cfg.val_dataloader.dataset.pipeline if t.type == 'LoadSegAnnotations']
    assert loads and all(t.num_classes == 150 for t in loads)


def test_data_folders_are_not_walked_in_full(tmp_path, monkeypatch):
    """Only a folder's first files are looked at (every file of COCO's 118k was stat-ed at
    each start); an empty folder and a zero-byte file among the first are still named."""
    folder = tmp_path / 'images'
    (folder / 'sub').mkdir(parents=True)
    for i in range(6):
        (folder / f'{i}.jpg').write_bytes(b'x')
        (folder / 'sub' / f'{i}.jpg').write_bytes(b'x')
    monkeypatch.setattr(preflight, '_FILES_CHECKED', 4, raising=False)
    sizes = []
    getsize = osp.getsize
    monkeypatch.setattr(preflight.osp, 'getsize', lambda path: sizes.append(path) or getsize(path))
    preflight._check_folder_files('key', str(folder), needs_files=True)
    assert len(sizes) == 4
    monkeypatch.undo()
    (folder / '0.jpg').write_bytes(b'')
    with pytest.raises(ConfigError, match=r"key: file '.*0\.jpg' is empty \(0 bytes\)"):
        preflight._check_folder_files('key', str(folder), needs_files=True)
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"key: folder '.*empty' holds no files"):
        preflight._check_folder_files('key', str(empty), needs_files=True)
    preflight._check_folder_files('key', str(empty), needs_files=False)  # a label folder


@pytest.fixture
def demo_seg_checkpoint(tmp_path):
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    cfg = load_config(DEMO_SEG)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
    path = str(tmp_path / 'demo.pth')
    torch.save(dict(state_dict=model.state_dict(), meta={}), path)
    return path


def test_a_test_run_reads_its_checkpoint_once(demo_seg_checkpoint, ade_root, tmp_path,
                                              monkeypatch):
    """The fit check read the checkpoint, then the runner read it again from the file."""
    import vitext.apis
    from vitext.checkpoint import mmengine_loaders
    reads = []  # every file read through mmengine's CheckpointLoader ends in this safe_load
    safe_load = mmengine_loaders.safe_load
    monkeypatch.setattr(mmengine_loaders, 'safe_load',
                        lambda path, *args, **kwargs: reads.append(path) or safe_load(
                            path, *args, **kwargs))
    options = {'test_dataloader.dataset.data_root': ade_root,
               'test_dataloader.num_workers': 0, 'test_dataloader.persistent_workers': False}
    result = vitext.apis.test(DEMO_SEG, demo_seg_checkpoint, work_dir=str(tmp_path / 'work'),
                              cfg_options=options)
    assert 'mIoU' in result['metrics']
    assert reads == [demo_seg_checkpoint]
    # A file changed after the check is read again.
    reads.clear()
    from mmengine.runner import CheckpointLoader
    with vitext.apis._checkpoint_read_once(demo_seg_checkpoint, {'stale': 1},
                                           (os.path.getsize(demo_seg_checkpoint) + 1, 0)):
        loaded = CheckpointLoader.load_checkpoint(demo_seg_checkpoint, map_location='cpu')
    assert 'state_dict' in loaded and reads == [demo_seg_checkpoint]
