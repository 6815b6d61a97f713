"""A corrupt image, label or annotation file fails with one message naming it; tiny inputs
run."""
import glob
import json
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope

from vitext.apis import fill_label_ranges
from vitext.preflight import ConfigError, check_data, load_config
from vitext.data.transforms import CorruptDataError

from conftest import DEMO_DET, DEMO_SEG, ROOT, det_options

# Every segmentation config (ADE20K and its synthetic stand-in), and the data set base itself.
SEG_CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', '**', '*ade20k*.py'), recursive=True))


def build_val_dataset(data_root):
    """The validation set as vitext's tools build it (after their pre-run checks)."""
    from mmseg.registry import DATASETS
    cfg = load_config(DEMO_SEG, {'val_dataloader.dataset.data_root': data_root})
    check_data(cfg, ('val_dataloader',))
    fill_label_ranges(cfg, ('val_dataloader',))
    with DefaultScope.overwrite_default_scope('mmseg'):
        return DATASETS.build(cfg.val_dataloader.dataset)


def val_label(root, index):
    return osp.join(root, 'annotations', 'validation', f'ADE_val_{index:08d}.png')


def val_image(root, index):
    return osp.join(root, 'images', 'validation', f'ADE_val_{index:08d}.jpg')


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


def test_label_values_beyond_the_classes_named(ade_copy):
    """ADE20K has 150 classes: label values 1..150, 0 = "other" (ignored), 255 ignored. A 200
    used to train into ``IndexError: Target 199 is out of bounds`` and test into a wrong mIoU."""
    label = cv2.imread(val_label(ade_copy, 1), cv2.IMREAD_UNCHANGED)
    label[:2, :2] = (0, 150), (255, 1)
    cv2.imwrite(val_label(ade_copy, 1), label)
    label[10, 10], label[20, 20] = 200, 151
    cv2.imwrite(val_label(ade_copy, 2), label)
    dataset = build_val_dataset(ade_copy)
    assert dataset[0]['data_samples'].gt_sem_seg.data.max() == 255  # 0, 150, 255 are fine
    with pytest.raises(CorruptDataError, match=r"'.*ADE_val_00000002.png' holds value\(s\) "
                       r'151, 200; expected 1..150 for the 150 classes, 0 = ignored'):
        dataset[1]


def test_label_values_checked_without_reduce_zero_label():
    from vitext.data.transforms import LoadSegAnnotations
    transform = LoadSegAnnotations(num_classes=3, reduce_zero_label=False)
    with pytest.raises(CorruptDataError, match=r"'l.png' holds value\(s\) 3; expected 0..2"):
        transform._check_label_range('l.png', np.array([[0, 2], [255, 3]], np.uint8))


def test_sixteen_bit_label_values_seen_as_they_are(ade_root, ade_copy):
    """A 16-bit label PNG holding 300 used to be read as 300 - 256 = 44 (mmseg casts label maps
    to 8 bits), a valid class: it trained and tested with a score. An in-range 16-bit label
    loads the same values as its 8-bit original."""
    label = cv2.imread(val_label(ade_copy, 1), cv2.IMREAD_UNCHANGED).astype(np.uint16)
    label[5, 5] = 300
    cv2.imwrite(val_label(ade_copy, 1), label)
    wide = cv2.imread(val_label(ade_copy, 2), cv2.IMREAD_UNCHANGED).astype(np.uint16)
    cv2.imwrite(val_label(ade_copy, 2), wide)
    assert cv2.imread(val_label(ade_copy, 2), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    dataset = build_val_dataset(ade_copy)
    with pytest.raises(CorruptDataError, match=r"'.*ADE_val_00000001.png' holds value\(s\) 300; "
                       r'expected 1..150 for the 150 classes, 0 = ignored'):
        dataset[0]
    loaded = dataset[1]['data_samples'].gt_sem_seg.data
    assert torch.equal(loaded, build_val_dataset(ade_root)[1]['data_samples'].gt_sem_seg.data)


def test_sixteen_bit_label_refused_without_a_class_count(tmp_path):
    """Even with no class count to check against, a value an 8-bit label map cannot hold is
    refused rather than wrapped."""
    from vitext.data.transforms import LoadSegAnnotations
    path = str(tmp_path / 'l.png')
    cv2.imwrite(path, np.array([[0, 1], [2, 256]], np.uint16))
    transform = LoadSegAnnotations(reduce_zero_label=False)
    with pytest.raises(CorruptDataError, match=r"'.*l.png' holds value\(s\) 256; expected 0..255 "
                       r'\(a label map of more than 8 bits: mmseg reads 256 as 0\)'):
        transform(dict(seg_map_path=path, reduce_zero_label=False, seg_fields=[]))


def test_empty_image_folder_named(ade_copy):
    for name in os.listdir(osp.dirname(val_image(ade_copy, 1))):
        os.remove(osp.join(osp.dirname(val_image(ade_copy, 1)), name))
    with pytest.raises(ConfigError, match=r'val_dataloader.dataset.data_prefix.img_path: folder '
                       r"'.*images/validation' holds no files"):
        build_val_dataset(ade_copy)


@pytest.mark.parametrize('which', ['image', 'label'])
def test_zero_byte_file_named(ade_copy, which):
    path = (val_image if which == 'image' else val_label)(ade_copy, 3)
    open(path, 'wb').close()
    with pytest.raises(ConfigError, match=rf"file '{path}' is empty \(0 bytes\)"):
        build_val_dataset(ade_copy)


@pytest.mark.parametrize('height,width', [(1, 5), (4, 1), (1, 1)])
def test_one_pixel_wide_image_and_label_load(ade_copy, height, width):
    """mmseg squeezes a 1-pixel side out of the label map; the valid label was then blamed
    (a 1x1 one as "could not be decoded")."""
    cv2.imwrite(val_image(ade_copy, 1), np.full((height, width, 3), 90, np.uint8))
    cv2.imwrite(val_label(ade_copy, 1), np.full((height, width), 4, np.uint8))
    seg = build_val_dataset(ade_copy)[0]['data_samples'].gt_sem_seg.data
    assert tuple(seg.shape) == (1, height, width) and (seg == 3).all()


@pytest.fixture(scope='module')
def exif_rotated_jpeg(ade_root, tmp_path_factory):
    """A square validation image saved again with an EXIF orientation tag (6: shown turned 90
    degrees clockwise), and its pixels as stored."""
    from PIL import Image
    path = str(tmp_path_factory.mktemp('exif') / 'ADE_val_00000001.jpg')
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    Image.open(val_image(ade_root, 1)).save(path, exif=exif, quality=95)
    stored = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    assert not np.array_equal(cv2.imread(path), stored)  # decoders turn it by default
    return path, stored


@pytest.mark.parametrize('path', SEG_CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_segmentation_images_are_read_as_stored(path, exif_rotated_jpeg):
    """ADE20K's label maps are drawn on the stored pixels; mmcv's default image loading obeys a
    JPEG's EXIF orientation, which turned a square image against its label (it trained and
    scored). Every image loader of every pipeline of the segmentation configs reads it as
    stored."""
    from mmengine.config import Config
    from mmseg.registry import TRANSFORMS
    from vitext.apis import _pipeline_transforms
    image, stored = exif_rotated_jpeg
    cfg = Config.fromfile(path)
    pipelines = [cfg.get(key) for key in ('train_pipeline', 'test_pipeline', 'tta_pipeline')]
    pipelines += [cfg.get(loader, {}).get('dataset', {}).get('pipeline')
                  for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    loaders = [t for t in _pipeline_transforms(pipelines) if t['type'] == 'LoadImageFromFile']
    assert loaders
    with DefaultScope.overwrite_default_scope('mmseg'):
        for loader in loaders:
            loaded = TRANSFORMS.build(loader)(dict(img_path=image))['img']
            assert np.array_equal(loaded, stored), loader


def _damage(ann, damage):
    if damage == 'no annotations':
        del ann['annotations']
    elif damage == 'no images':
        del ann['images']
    elif damage == 'unknown category':
        ann['annotations'][1]['category_id'] = 999
    elif damage == 'malformed box':
        ann['annotations'][2]['bbox'] = [1, 2, 3]
    elif damage == 'negative box':
        ann['annotations'][2]['bbox'] = [1, 2, -3, 4]
    return json.dumps(ann)


@pytest.mark.parametrize('damage,message', [
    ('truncated', r' is not valid JSON \(.*\); is it truncated\?'),
    ('no annotations', r': "annotations" is missing; expected a list'),
    ('no images', r': "images" is missing; expected a list'),
    ('unknown category', r': annotations\[1\] \(id 2\) has category_id 999, which is not among'),
    ('malformed box', r': annotations\[2\] \(id 3\) has bbox \[1, 2, 3\]; expected \[x, y'),
    ('negative box', r': annotations\[2\] \(id 3\) has bbox \[1, 2, -3, 4\]; expected'),
])
def test_damaged_coco_annotations_named(coco_root, tmp_path, damage, message):
    root = shutil.copytree(coco_root, tmp_path / 'coco')
    path = root / 'annotations' / 'instances_val2017.json'
    text = path.read_text()
    path.write_text(text[:len(text) // 2] if damage == 'truncated'
                    else _damage(json.loads(text), damage))
    opts = dict(o.split('=', 1) for o in det_options(root))
    opts = {k: v for k, v in opts.items() if 'dataset.data_root' in k or 'ann_file' in k}
    cfg = load_config(DEMO_DET, opts)
    with pytest.raises(CorruptDataError, match=rf"annotation file '{path}'" + message):
        check_data(cfg, ('val_dataloader',))


def test_annotation_file_too_deep_to_read_is_named(tmp_path):
    """Python's RecursionError escaped without the file's name."""
    from vitext.data.annotations import check_coco_annotations
    path = tmp_path / 'instances_val2017.json'
    path.write_text('{"images": ' + '[' * 5000 + ']' * 5000 + '}')
    with pytest.raises(CorruptDataError, match=rf"^annotation file '{path}' nests deeper than "
                       r'Python reads \(RecursionError\); expected a COCO instances file'):
        check_coco_annotations(str(path))


@pytest.mark.parametrize('height,width', [(16, 16), (16, 200), (200, 16)])
def test_plain_vit_pyramid_takes_one_token_high_grids(height, width):
    """AFT-conv runs at any input size: a 1-token side used to fail in the stride-32 pool."""
    from vitext.models.backbones import AFTViT
    model = AFTViT(dict(embed_dims=32, num_layers=4), num_heads=8, kernel_size=3,
                   out_indices=(0, 1, 2, 3)).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, height, width))
    h, w = -(-height // 16), -(-width // 16)
    assert [tuple(o.shape[-2:]) for o in outs] == [
        (4 * h, 4 * w), (2 * h, 2 * w), (h, w), (max(h // 2, 1), max(w // 2, 1))]
    assert all(torch.isfinite(o).all() for o in outs)
