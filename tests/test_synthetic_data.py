import filecmp
import json
import os
import os.path as osp
import runpy
import shutil

import cv2
import numpy as np
import pytest

from conftest import ROOT, run_tool

from vitext.data.synthetic import (ADE_OBJECTS, ADE_STUFF, class_styles, make_ade20k, make_coco,
                                   make_imagenet, render_scene)


def test_ade20k_layout_and_labels(ade_root):
    for split, count in (('training', 24), ('validation', 6)):
        imgs = sorted(os.listdir(osp.join(ade_root, 'images', split)))
        anns = sorted(os.listdir(osp.join(ade_root, 'annotations', split)))
        assert len(imgs) == len(anns) == count
        assert [f[:-4] for f in imgs] == [f[:-4] for f in anns]
        assert all(f.endswith('.jpg') for f in imgs) and all(f.endswith('.png') for f in anns)
    label = cv2.imread(osp.join(ade_root, 'annotations', 'training', 'ADE_train_00000001.png'),
                       cv2.IMREAD_UNCHANGED)
    img = cv2.imread(osp.join(ade_root, 'images', 'training', 'ADE_train_00000001.jpg'))
    assert label.ndim == 2 and label.dtype == np.uint8 and label.shape == img.shape[:2] == (64, 64)
    values = set(np.unique(label).tolist())
    assert values <= {0, *ADE_STUFF, *ADE_OBJECTS}
    assert 0 in values  # the "other" patch, ignored after reduce_zero_label


def test_deterministic_from_seed(tmp_path):
    a = make_ade20k(str(tmp_path / 'a'), num_train=3, num_val=1, height=48, width=64, seed=7)
    b = make_ade20k(str(tmp_path / 'b'), num_train=3, num_val=1, height=48, width=64, seed=7)
    c = make_ade20k(str(tmp_path / 'c'), num_train=3, num_val=1, height=48, width=64, seed=8)
    rel = osp.join('annotations', 'training', 'ADE_train_00000002.png')
    assert filecmp.cmp(osp.join(a, rel), osp.join(b, rel), shallow=False)
    assert not filecmp.cmp(osp.join(a, rel), osp.join(c, rel), shallow=False)


def test_classes_differ_in_appearance():
    # Pixels of different object classes have clearly different mean colours.
    means = {}
    for i in range(40):
        img, label, _ = render_scene(i, 96, 96, ADE_STUFF, ADE_OBJECTS)
        for cls in np.unique(label):
            means.setdefault(int(cls), []).append(img[label == cls].mean(0))
    centres = {c: np.mean(v, 0) for c, v in means.items() if c != 0}
    assert len(centres) >= 8
    dists = [np.linalg.norm(centres[a] - centres[b]) for a in centres for b in centres if a < b]
    assert min(dists) > 10


def test_instance_colours_leave_only_texture_and_shape():
    """colours='instance' draws every region in a random colour: a class's mean colour then
    varies between instances as much as between classes, and no two classes share both
    texture and shape (with colours, classes i and i + 6 may)."""
    def spread(colours):
        means = {}
        for i in range(30):
            img, label, _ = render_scene(i, 96, 96, ADE_STUFF, ADE_OBJECTS, colours=colours)
            for cls in np.unique(label[label > 0]):
                means.setdefault(int(cls), []).append(img[label == cls].mean(0))
        return np.median([np.std(v, 0).mean() for v in means.values() if len(v) > 2])

    assert spread('class') < 10 < 30 < spread('instance')
    styles = class_styles(list(ADE_STUFF) + list(ADE_OBJECTS), colours='instance')
    looks = [(styles[c].texture, styles[c].shape) for c in ADE_OBJECTS]
    assert len(set(looks)) == len(ADE_OBJECTS), looks


def test_object_size_sets_the_object_radii():
    def object_fraction(object_size):
        labels = [render_scene(i, 64, 64, ADE_STUFF, ADE_OBJECTS, max_objects=1,
                               object_size=object_size)[1] for i in range(20)]
        return np.mean([np.isin(label, ADE_OBJECTS).mean() for label in labels])

    # Measured 0.059 and 0.24 of the image: one object of radii ~ U(min, max) x the side.
    small, large = object_fraction((0.1, 0.22)), object_fraction((0.25, 0.42))
    assert 0.03 < small < 0.09 and 0.18 < large < 0.35, (small, large)


def test_make_synthetic_data_tool_writes_what_make_imagenet_writes(tmp_path):
    run_tool(['tools/make_synthetic_data.py', '--out', str(tmp_path / 'cli'), '--which',
              'imagenet', '--num-train', '2', '--num-val', '1', '--colours', 'instance',
              '--max-objects', '1', '--object-size', '0.25', '0.42'])
    make_imagenet(str(tmp_path / 'api'), num_train=2, num_val=1, colours='instance',
                  max_objects=1, object_size=(0.25, 0.42))
    cli, api = tmp_path / 'cli' / 'imagenet', tmp_path / 'api'
    files = sorted(str(p.relative_to(api)) for p in api.rglob('*') if p.is_file())
    assert len(files) == 8 * 3 + 3 + 1  # images, meta/*.txt, the .vitext-synthetic marker
    match, mismatch, errors = filecmp.cmpfiles(cli, api, files, shallow=False)
    assert not mismatch and not errors, (mismatch, errors)


def test_writing_again_replaces_the_set_and_a_foreign_folder_is_refused(tmp_path):
    root = make_imagenet(str(tmp_path / 'imagenet'), num_train=3, num_val=2, size=32)
    make_imagenet(root, num_train=1, num_val=1, size=32)  # smaller: nothing of the first stays
    assert len(list((tmp_path / 'imagenet' / 'train').rglob('*.JPEG'))) == 8
    assert len(list((tmp_path / 'imagenet' / 'val').glob('*.JPEG'))) == 8
    real = tmp_path / 'coco'
    (real / 'train2017').mkdir(parents=True)
    (real / 'train2017' / '000000000001.jpg').write_bytes(b'a real image')
    with pytest.raises(FileExistsError, match=r'coco is not empty and holds no \.vitext-synthetic'):
        make_coco(str(real), num_train=1, num_val=1)
    assert (real / 'train2017' / '000000000001.jpg').read_bytes() == b'a real image'


def test_coco_annotations_match_images(coco_root):
    with open(osp.join(coco_root, 'annotations', 'instances_train2017.json')) as f:
        coco = json.load(f)
    assert len(coco['images']) == 16 and len(coco['categories']) == 80
    assert coco['annotations'], 'no objects were drawn'
    names = {c['id']: c['name'] for c in coco['categories']}
    by_image = {im['id']: im for im in coco['images']}
    for ann in coco['annotations']:
        im = by_image[ann['image_id']]
        assert osp.isfile(osp.join(coco_root, 'train2017', im['file_name']))
        x, y, w, h = ann['bbox']
        assert 0 <= x and 0 <= y and x + w <= im['width'] and y + h <= im['height']
        assert w > 0 and h > 0 and ann['area'] > 0 and ann['iscrowd'] == 0
        poly = np.array(ann['segmentation'][0]).reshape(-1, 2)
        assert poly[:, 0].min() == pytest.approx(x, abs=0.02)
        assert poly[:, 1].max() == pytest.approx(y + h, abs=0.02)
        assert names[ann['category_id']] in ('person', 'car', 'dog', 'bottle', 'chair', 'clock',
                                             'umbrella', 'bird')


def test_bad_arguments():
    with pytest.raises(ValueError, match='1..150'):
        make_ade20k('/nonexistent', num_train=1, objects=(151,))
    with pytest.raises(ValueError, match='at least 32x32'):
        make_ade20k('/nonexistent', height=8, width=8)
    with pytest.raises(ValueError, match='not among the categories'):
        make_coco('/nonexistent', objects=('unicorn',), classes=('person',))
    with pytest.raises(ValueError, match="colours must be 'class' or 'instance', got 'random'"):
        render_scene(0, 64, 64, ADE_STUFF, ADE_OBJECTS, colours='random')
    with pytest.raises(ValueError, match=r'object_size .* 0 < min <= max < 0.45 .*\(0.3, 0.5\)'):
        make_imagenet('/nonexistent', object_size=(0.3, 0.5))
    assert not osp.exists('/nonexistent')


def test_a_linked_sub_folder_is_replaced_not_written_through(tmp_path):
    """A set's ``images`` folder that is a symbolic link to a real image folder: writing the set
    again removes the link and writes a real folder; the link's target keeps its files."""
    real = tmp_path / 'real_images'
    real.mkdir()
    (real / 'ADE_train_00000001.jpg').write_bytes(b'a real image')
    data_root = make_ade20k(str(tmp_path / 'ade'), num_train=1, num_val=1, height=32, width=32)
    images = osp.join(data_root, 'images')
    shutil.rmtree(images)
    os.symlink(real, images)
    make_ade20k(str(tmp_path / 'ade'), num_train=2, num_val=1, height=32, width=32)
    assert not osp.islink(images) and len(os.listdir(osp.join(images, 'training'))) == 2
    assert os.listdir(real) == ['ADE_train_00000001.jpg']
    assert (real / 'ADE_train_00000001.jpg').read_bytes() == b'a real image'


def test_a_linked_set_folder_is_refused(tmp_path):
    """``ADEChallengeData2016`` that is a symbolic link to a real folder holding a stray marker:
    refused, naming the link, and nothing in the real folder is touched."""
    real = tmp_path / 'real_ade'
    (real / 'images' / 'training').mkdir(parents=True)
    (real / 'images' / 'training' / 'ADE_train_00000001.jpg').write_bytes(b'a real image')
    (real / '.vitext-synthetic').write_text('stray')
    (tmp_path / 'ade').mkdir()
    link = tmp_path / 'ade' / 'ADEChallengeData2016'
    os.symlink(real, link)
    with pytest.raises(FileExistsError, match=f'{link} is a symbolic link'):
        make_ade20k(str(tmp_path / 'ade'), num_train=1, num_val=1, height=32, width=32)
    assert (real / 'images' / 'training' / 'ADE_train_00000001.jpg').read_bytes() == b'a real image'
    assert sorted(os.listdir(real)) == ['.vitext-synthetic', 'images']


def test_a_linked_marker_is_not_written_through(tmp_path):
    """A ``.vitext-synthetic`` that is a symbolic link to another file does not mark the folder as
    a synthetic set, and that file is left as it was."""
    other = tmp_path / 'notes.txt'
    other.write_text('keep me')
    root = tmp_path / 'imagenet'
    root.mkdir()
    os.symlink(other, root / '.vitext-synthetic')
    with pytest.raises(FileExistsError, match='holds no .vitext-synthetic'):
        make_imagenet(str(root), num_train=1, num_val=1, size=32)
    assert other.read_text() == 'keep me'


@pytest.mark.parametrize('argument,value,message', [
    ('--num-train', '0', 'argument --num-train: must be a whole number >= 1, got 0'),
    ('--num-train', '-3', 'argument --num-train: must be a whole number >= 1, got -3'),
    ('--num-val', '0', 'argument --num-val: must be a whole number >= 1, got 0'),
    ('--height', '0', 'argument --height: must be a whole number >= 32, got 0'),
    ('--width', '8', 'argument --width: must be a whole number >= 32, got 8'),
    ('--max-objects', '0', 'argument --max-objects: must be a whole number >= 1, got 0')])
def test_make_synthetic_data_tool_refuses_degenerate_sizes(tmp_path, capsys, monkeypatch,
                                                           argument, value, message):
    out = tmp_path / 'out'
    monkeypatch.setattr('sys.argv', ['make_synthetic_data.py', '--out', str(out), argument, value])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(osp.join(ROOT, 'tools', 'make_synthetic_data.py'), run_name='__main__')
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize('counts', [dict(num_train=0), dict(num_train=-3), dict(num_val=0)])
def test_empty_sets_are_refused(tmp_path, counts):
    name, value = next(iter(counts.items()))
    for make in (make_ade20k, make_coco, make_imagenet):
        with pytest.raises(ValueError, match=f'{name} must be at least 1, got {value}'):
            make(str(tmp_path / 'set'), **counts)
    assert not (tmp_path / 'set').exists()


def test_make_synthetic_data_tool_refuses_a_linked_set_in_one_line(tmp_path, monkeypatch):
    real = tmp_path / 'real_ade'
    real.mkdir()
    (tmp_path / 'out' / 'ade').mkdir(parents=True)
    os.symlink(real, tmp_path / 'out' / 'ade' / 'ADEChallengeData2016')
    monkeypatch.setattr('sys.argv', ['make_synthetic_data.py', '--out', str(tmp_path / 'out'),
                                     '--which', 'ade', '--num-train', '1', '--num-val', '1'])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(osp.join(ROOT, 'tools', 'make_synthetic_data.py'), run_name='__main__')
    assert str(exit_info.value.code).startswith(
        f'vitext make-data: {tmp_path}/out/ade/ADEChallengeData2016 is a symbolic link')
    assert os.listdir(real) == []
