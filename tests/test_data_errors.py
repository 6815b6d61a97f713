"""A corrupt image or label file fails with one message naming it."""
import os.path as osp
import shutil

import pytest
from mmengine.registry import DefaultScope

from vitext.apis import load_config
from vitext.data.transforms import CorruptDataError

from conftest import DEMO_SEG


def build_val_dataset(data_root):
    from mmseg.registry import DATASETS
    cfg = load_config(DEMO_SEG, {'val_dataloader.dataset.data_root': data_root})
    with DefaultScope.overwrite_default_scope('mmseg'):
        return DATASETS.build(cfg.val_dataloader.dataset)


@pytest.fixture
def ade_copy(ade_root, tmp_path):
    return shutil.copytree(ade_root, str(tmp_path / 'ADEChallengeData2016'))


def test_clean_dataset_loads(ade_root):
    dataset = build_val_dataset(ade_root)
    sample = dataset[0]
    assert sample['data_samples'].gt_sem_seg.data.shape[-2:] == (64, 64)


def test_corrupt_label_named(ade_copy):
    path = osp.join(ade_copy, 'annotations', 'validation', 'ADE_val_00000001.png')
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n garbage')
    with pytest.raises(CorruptDataError, match=r'ADE_val_00000001.png.*could not be decoded'):
        build_val_dataset(ade_copy)[0]


def test_label_of_wrong_size_named(ade_copy):
    import cv2
    import numpy as np
    path = osp.join(ade_copy, 'annotations', 'validation', 'ADE_val_00000002.png')
    cv2.imwrite(path, np.zeros((32, 48), np.uint8))
    with pytest.raises(CorruptDataError, match=r'ADE_val_00000002.png.* is 32x48 but its image'):
        build_val_dataset(ade_copy)[1]


def test_corrupt_image_named(ade_copy):
    path = osp.join(ade_copy, 'images', 'validation', 'ADE_val_00000003.jpg')
    with open(path, 'wb') as f:
        f.write(b'definitely not a jpeg')
    with pytest.raises(Exception, match=r'ADE_val_00000003.jpg'):
        build_val_dataset(ade_copy)[2]
