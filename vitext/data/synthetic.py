"""Learnable synthetic datasets in the exact on-disk formats of ADE20K, COCO and ImageNet.

A scene is a textured two-region background ("stuff" classes, e.g. sky over floor) with a few
non-overlapping objects. Every class has its own colour, texture (stripes, checks, dots, ...) and,
for objects, shape, so a small model learns to segment/detect them in a few hundred iterations.
With ``colours='instance'`` every region gets a random colour instead, so classes differ only in
texture and shape: a harder task, whose features a backbone has to learn (a segmentation head
over a random backbone learns a colour alone, so the class-colour sets cannot show what a
pretrained backbone adds).
Each image is drawn from ``seed`` and its index alone: the same arguments give the same files.
A set is written into a folder that is empty or holds an earlier synthetic set (marked by a
``.vitext-synthetic`` file), which it replaces whole, so no image of a larger earlier set stays
behind; any other non-empty folder (a real data set, say) is refused, never overwritten.
Nothing is written or deleted through a symbolic link inside the set: a set folder that is
itself a link is refused (its target may be a real data set with a stray marker); a linked
sub-folder or file of an earlier set is replaced by removing the link, never its target; a
marker that is a link does not mark a set. Links above the set folder (``data -> /disk``) are
followed as any path is.

Pure numpy + OpenCV; no mm imports.
"""
import colorsys
import json
import os
import os.path as osp
import shutil
from dataclasses import dataclass
from typing import Dict, List, Literal, Optional, Sequence, Tuple

import cv2
import numpy as np

TEXTURES = ('stripes', 'checks', 'dots', 'waves', 'speckle', 'flat')
SHAPES = ('ellipse', 'rectangle', 'triangle', 'diamond', 'hexagon', 'star')
Colours = Literal['class', 'instance']

# ADE20K label values (1..150 in the PNGs; 0 is "other"): wall, sky, floor, grass as stuff;
# person, car, tree, bed, chair, table, plant, painting as objects.
ADE_STUFF = (1, 3, 4, 10)
ADE_OBJECTS = (13, 21, 5, 8, 20, 16, 18, 23)
# COCO category names used for objects; the json lists all categories it is given.
COCO_OBJECTS = ('person', 'car', 'dog', 'bottle', 'chair', 'clock', 'umbrella', 'bird')


@dataclass(frozen=True)
class ClassStyle:
    colour: Tuple[int, int, int]
    texture: str
    period: float  # texture period in pixels
    angle: float  # radians
    shape: str


def class_styles(labels: Sequence[int], style_seed: int = 0,
                 colours: Colours = 'class') -> Dict[int, ClassStyle]:
    """Appearance of each class in ``labels``, fixed for a (labels, style_seed, colours) triple.

    Hues are spread evenly over the classes (and saturation/brightness alternate), so no two
    classes share a colour; texture and shape cycle through their lists. With
    ``colours='instance'`` the colour tells nothing, so the texture cycle steps one further after
    each round: classes i and i + 6 then differ in texture as well as in shape."""
    styles = {}
    for i, label in enumerate(labels):
        texture = i + (i // len(TEXTURES) if colours == 'instance' else 0)
        rng = np.random.default_rng([style_seed, int(label)])
        hue = (i / len(labels) + style_seed * 0.137) % 1.0
        rgb = colorsys.hsv_to_rgb(hue, 0.45 + 0.4 * (i % 2), 0.55 + 0.35 * ((i // 2) % 2))
        styles[int(label)] = ClassStyle(colour=tuple(int(255 * c) for c in rgb),
                                        texture=TEXTURES[texture % len(TEXTURES)],
                                        period=float(rng.uniform(6, 14)),
                                        angle=float(rng.uniform(0, np.pi)),
                                        shape=SHAPES[i % len(SHAPES)])
    return styles


def _texture(style: ClassStyle, height: int, width: int, rng: np.random.Generator,
             colours: Colours = 'class') -> np.ndarray:
    """An HxWx3 uint8 texture of the class, with a small per-instance colour/phase jitter
    (``colours='class'``) or in a random colour (``'instance'``)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    u = xx * np.cos(style.angle) + yy * np.sin(style.angle) + rng.uniform(0, style.period)
    v = -xx * np.sin(style.angle) + yy * np.cos(style.angle)
    phase = 2 * np.pi / style.period
    if style.texture == 'stripes':
        pattern = np.sign(np.sin(u * phase))
    elif style.texture == 'checks':
        pattern = np.sign(np.sin(u * phase) * np.sin(v * phase))
    elif style.texture == 'dots':
        pattern = (np.sin(u * phase) * np.sin(v * phase) > 0.5) * 2.0 - 1.0
    elif style.texture == 'waves':
        pattern = np.sin(u * phase + 2 * np.sin(v * phase / 2))
    elif style.texture == 'speckle':
        pattern = rng.uniform(-1, 1, size=(height, width)).astype(np.float32)
    else:
        pattern = np.zeros((height, width), np.float32)
    if colours == 'instance':
        hsv = rng.uniform(0, 1), rng.uniform(0.45, 0.85), rng.uniform(0.55, 0.9)
        colour = 255 * np.array(colorsys.hsv_to_rgb(*hsv), np.float32)
    else:
        colour = np.array(style.colour, np.float32) + rng.uniform(-12, 12, size=3)
    img = colour[None, None, :] * (1.0 + 0.25 * pattern[..., None])
    return np.clip(img, 0, 255).astype(np.uint8)


def _polygon(shape: str, cx: float, cy: float, rx: float, ry: float, rot: float) -> np.ndarray:
    """Vertices (N, 2) of a shape centred at (cx, cy) with radii (rx, ry), rotated by ``rot``."""
    if shape == 'ellipse':
        t = np.linspace(0, 2 * np.pi, 32, endpoint=False)
        pts = np.stack([np.cos(t), np.sin(t)], 1)
    elif shape == 'rectangle':
        pts = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * 0.8
    elif shape == 'triangle':
        t = np.array([-np.pi / 2, np.pi / 6, 5 * np.pi / 6])
        pts = np.stack([np.cos(t), np.sin(t)], 1)
    elif shape == 'diamond':
        pts = np.array([[0, -1], [1, 0], [0, 1], [-1, 0]], np.float64)
    elif shape == 'hexagon':
        t = np.linspace(0, 2 * np.pi, 6, endpoint=False)
        pts = np.stack([np.cos(t), np.sin(t)], 1)
    else:  # star
        t = np.linspace(0, 2 * np.pi, 10, endpoint=False)
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.5)
        pts = np.stack([r * np.cos(t), r * np.sin(t)], 1)
    rot_m = np.array([[np.cos(rot), -np.sin(rot)], [np.sin(rot), np.cos(rot)]])
    pts = pts @ rot_m.T * np.array([rx, ry])
    return pts + np.array([cx, cy])


@dataclass
class SceneObject:
    label: int
    polygon: np.ndarray  # (N, 2) float, x/y in pixels
    mask: np.ndarray  # (H, W) bool


def render_scene(index: int, height: int, width: int, stuff: Sequence[int],
                 objects: Sequence[int], seed: int = 0, max_objects: int = 4,
                 other_fraction: float = 0.05, object_choices: Optional[Sequence[int]] = None,
                 colours: Colours = 'class', object_size: Tuple[float, float] = (0.1, 0.22)
                 ) -> Tuple[np.ndarray, np.ndarray, List[SceneObject]]:
    """Draw scene ``index``: returns (BGR uint8 image, uint8 label map, objects).

    Label map values are the given class labels; 0 marks "other" (a noise patch covering about
    ``other_fraction`` of the image), as in ADE20K. Objects are drawn from ``object_choices``
    (default: all ``objects``); class appearances depend on ``stuff`` and ``objects`` only, so
    they are the same in every data set made from the same classes. ``colours``: 'class' (each
    class its own colour) or 'instance' (every region a random colour; classes differ only in
    texture and shape). ``object_size``: the (min, max) object radius as a fraction of the
    shorter image side.
    """
    if colours not in ('class', 'instance'):
        raise ValueError(f"colours must be 'class' or 'instance', got {colours!r}")
    _check_object_size(object_size)
    rng = np.random.default_rng([seed, index])
    styles = class_styles(list(stuff) + list(objects), seed, colours)
    img = np.zeros((height, width, 3), np.uint8)
    label = np.zeros((height, width), np.uint8)

    # Two stuff regions split by a slanted horizon.
    top, bottom = rng.choice(stuff, size=2, replace=False)
    yy, xx = np.mgrid[0:height, 0:width]
    horizon = rng.uniform(0.3, 0.7) * height + (xx - width / 2) * rng.uniform(-0.3, 0.3)
    for region, cls in ((yy < horizon, top), (yy >= horizon, bottom)):
        img[region] = _texture(styles[int(cls)], height, width, rng, colours)[region]
        label[region] = cls

    if other_fraction > 0:
        side = max(2, int(np.sqrt(other_fraction * height * width)))
        y0, x0 = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
        img[y0:y0 + side, x0:x0 + side] = rng.integers(0, 256, size=(side, side, 3))
        label[y0:y0 + side, x0:x0 + side] = 0

    placed: List[SceneObject] = []
    boxes: List[Tuple[float, float, float, float]] = []
    n_objects = int(rng.integers(1, max_objects + 1))
    for _ in range(n_objects * 20):  # rejection sampling of non-overlapping boxes
        if len(placed) == n_objects:
            break
        cls = int(rng.choice(objects if object_choices is None else object_choices))
        size = min(height, width)
        rx, ry = rng.uniform(*object_size, size=2) * size
        cx = rng.uniform(rx + 1, width - rx - 1)
        cy = rng.uniform(ry + 1, height - ry - 1)
        box = (cx - rx, cy - ry, cx + rx, cy + ry)
        if any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3]
               for b in boxes):
            continue
        style = styles[cls]
        poly = _polygon(style.shape, cx, cy, rx, ry, rng.uniform(0, 2 * np.pi))
        mask = np.zeros((height, width), np.uint8)
        cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
        mask = mask.astype(bool)
        if mask.sum() < 16:
            continue
        img[mask] = _texture(style, height, width, rng, colours)[mask]
        label[mask] = cls
        placed.append(SceneObject(cls, poly, mask))
        boxes.append(box)

    noise = rng.normal(0, 4, size=img.shape)
    img = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    return img, label, placed


MARKER = '.vitext-synthetic'
# Smallest image side: the scenes' objects and textures need room.
MIN_SIDE = 32


def _fresh_folder(folder: str, owned: Sequence[str]) -> None:
    """Ready ``folder`` for a new set: create it, or remove the ``owned`` entries of an earlier
    synthetic set there (a link among them is removed itself, its target left alone).

    Args:
        folder: the set folder; refused if it is a symbolic link, or not empty and not marked
            as a synthetic set by a regular ``.vitext-synthetic`` file.
        owned: names of the sub-folders the set consists of.
    """
    if osp.islink(folder):
        raise FileExistsError(
            f'{folder} is a symbolic link (to {os.readlink(folder)}): refusing to write or delete '
            'a synthetic set through it; pass the folder itself as the output, or remove the link')
    if osp.isdir(folder) and os.listdir(folder):
        marker = osp.join(folder, MARKER)
        if osp.islink(marker) or not osp.isfile(marker):
            raise FileExistsError(
                f'{folder} is not empty and holds no {MARKER} file, so it is not a synthetic set '
                'written by vitext: refusing to write over it; choose another output folder '
                '(tools/make_synthetic_data.py --out) or empty it')
        for name in owned:
            path = osp.join(folder, name)
            if osp.islink(path) or osp.isfile(path):
                os.unlink(path)
            elif osp.isdir(path):
                shutil.rmtree(path)
    os.makedirs(folder, exist_ok=True)
    with open(osp.join(folder, MARKER), 'w') as f:
        f.write('A synthetic set written by vitext.data.synthetic; writing a set here again '
                f'replaces {", ".join(owned)}.\n')


def _check_counts(num_train: int, num_val: int) -> None:
    """Refuse an empty split: training and evaluation both need images.

    Args:
        num_train: training images (per class for ImageNet).
        num_val: validation images (per class for ImageNet).
    """
    for name, value in (('num_train', num_train), ('num_val', num_val)):
        if value < 1:
            raise ValueError(f'{name} must be at least 1, got {value}')


def _check_object_size(object_size: Tuple[float, float]) -> None:
    if not 0 < object_size[0] <= object_size[1] < 0.45:
        raise ValueError('object_size must be (min, max) radii with 0 < min <= max < 0.45 of the '
                         f'image side, got {tuple(object_size)}')


def _check_size(height: int, width: int) -> None:
    if height < MIN_SIDE or width < MIN_SIDE:
        raise ValueError(f'synthetic images must be at least {MIN_SIDE}x{MIN_SIDE}, '
                         f'got {height}x{width}')


def make_ade20k(root: str, num_train: int = 200, num_val: int = 50, height: int = 128,
                width: int = 128, seed: int = 0, stuff: Sequence[int] = ADE_STUFF,
                objects: Sequence[int] = ADE_OBJECTS, max_objects: int = 4,
                colours: Colours = 'class') -> str:
    """Write a synthetic ADE20K under ``root``; returns ``root/ADEChallengeData2016``.

    Layout as the real data set: ``images/{training,validation}/*.jpg`` and
    ``annotations/{training,validation}/*.png`` with values 0 ("other") and labels in 1..150.
    ``colours``: as :func:`render_scene`'s.
    """
    _check_counts(num_train, num_val)
    _check_size(height, width)
    labels = list(stuff) + list(objects)
    if not all(1 <= c <= 150 for c in labels):
        raise ValueError(f'ADE20K labels must lie in 1..150, got {labels}')
    data_root = osp.join(root, 'ADEChallengeData2016')
    _fresh_folder(data_root, ('images', 'annotations'))
    for split, count, offset in (('training', num_train, 0), ('validation', num_val, 10**6)):
        img_dir = osp.join(data_root, 'images', split)
        ann_dir = osp.join(data_root, 'annotations', split)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        prefix = 'train' if split == 'training' else 'val'
        for i in range(count):
            img, label, _ = render_scene(offset + i, height, width, stuff, objects, seed,
                                         max_objects, colours=colours)
            name = f'ADE_{prefix}_{i + 1:08d}'
            cv2.imwrite(osp.join(img_dir, name + '.jpg'), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
            cv2.imwrite(osp.join(ann_dir, name + '.png'), label)
    return data_root


def default_coco_classes() -> Tuple[str, ...]:
    """The 80 COCO category names, in mmdet's order."""
    from mmdet.datasets import CocoDataset
    return tuple(CocoDataset.METAINFO['classes'])


def make_coco(root: str, num_train: int = 100, num_val: int = 20, height: int = 128,
              width: int = 160, seed: int = 0, objects: Sequence[str] = COCO_OBJECTS,
              classes: Optional[Sequence[str]] = None, max_objects: int = 4,
              colours: Colours = 'class') -> str:
    """Write a synthetic COCO instances set under ``root`` (returned).

    Layout: ``train2017/``, ``val2017/`` and ``annotations/instances_{train,val}2017.json`` with
    boxes (xywh), polygon masks and areas. ``classes`` (default: COCO's 80) are the categories
    listed in the json, with ids 1..len(classes); objects are drawn from ``objects``.
    ``colours``: as :func:`render_scene`'s.
    """
    _check_counts(num_train, num_val)
    _check_size(height, width)
    classes = tuple(classes) if classes is not None else default_coco_classes()
    missing = [name for name in objects if name not in classes]
    if missing:
        raise ValueError(f'object classes {missing} are not among the categories {classes}')
    cat_id: Dict[str, int] = {name: i + 1 for i, name in enumerate(classes)}
    # Labels for the renderer: object categories as 1..K, backgrounds after them.
    obj_labels = [cat_id[name] for name in objects]
    stuff_labels = [200 + i for i in range(3)]  # background only, never annotated
    _fresh_folder(root, ('annotations', 'train2017', 'val2017'))
    os.makedirs(osp.join(root, 'annotations'))
    for split, count, offset in (('train2017', num_train, 0), ('val2017', num_val, 10**6)):
        os.makedirs(osp.join(root, split))
        images, annotations = [], []
        for i in range(count):
            img, _, placed = render_scene(offset + i, height, width, stuff_labels, obj_labels,
                                          seed, max_objects, other_fraction=0, colours=colours)
            image_id = i + 1
            file_name = f'{image_id:012d}.jpg'
            cv2.imwrite(osp.join(root, split, file_name), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
            images.append(dict(id=image_id, file_name=file_name, height=height, width=width))
            for obj in placed:
                poly = np.clip(obj.polygon, 0, [width - 1, height - 1])
                x0, y0 = poly.min(0)
                x1, y1 = poly.max(0)
                annotations.append(dict(
                    id=len(annotations) + 1, image_id=image_id, category_id=obj.label,
                    segmentation=[[round(float(c), 2) for c in poly.reshape(-1)]],
                    area=float(obj.mask.sum()),
                    bbox=[round(float(x0), 2), round(float(y0), 2),
                          round(float(x1 - x0), 2), round(float(y1 - y0), 2)],
                    iscrowd=0))
        categories = [dict(id=cat_id[name], name=name, supercategory='synthetic')
                      for name in classes]
        with open(osp.join(root, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories), f)
    return root


def make_imagenet(root: str, num_train: int = 40, num_val: int = 10, size: int = 64,
                  seed: int = 0, stuff: Sequence[int] = ADE_STUFF,
                  objects: Sequence[int] = ADE_OBJECTS, max_objects: int = 2,
                  colours: Colours = 'class', object_size: Tuple[float, float] = (0.1, 0.22)
                  ) -> str:
    """Write a synthetic ImageNet-format classification set under ``root`` (returned).

    One class per object class of the ADE20K generator (same appearances, so a backbone
    pre-trained here transfers to the synthetic ADE20K/COCO sets): an image of class ``c`` shows
    1..``max_objects`` objects of ``c`` on a random two-region background. ``num_train`` /
    ``num_val`` images per class. Layout as ImageNet-1k's: ``train/<class>/*.JPEG``, flat
    ``val/*.JPEG``, ``meta/train.txt`` / ``meta/val.txt`` ("relative/path label" lines) and
    ``meta/classes.txt`` (one class name a line, in label order). ``colours``, ``object_size``:
    as :func:`render_scene`'s; ``max_objects=1, object_size=(0.25, 0.42)`` gives object-centric
    images, as ImageNet's photos are, whose object a small model can learn without colour cues.
    """
    _check_counts(num_train, num_val)
    _check_size(size, size)
    _check_object_size(object_size)
    classes = [f'class_{label:03d}' for label in objects]
    _fresh_folder(root, ('meta', 'train', 'val'))
    os.makedirs(osp.join(root, 'meta'))
    with open(osp.join(root, 'meta', 'classes.txt'), 'w') as f:
        f.write('\n'.join(classes) + '\n')
    for split, count, offset in (('train', num_train, 0), ('val', num_val, 10**6)):
        lines = []
        for c, (label, name) in enumerate(zip(objects, classes)):
            folder = osp.join(root, split, name) if split == 'train' else osp.join(root, split)
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                index = offset + c * count + i
                img, _, _ = render_scene(index, size, size, stuff, objects, seed, max_objects,
                                         other_fraction=0, object_choices=[label],
                                         colours=colours, object_size=object_size)
                if split == 'train':
                    rel = f'{name}/{name}_{i:05d}.JPEG'
                else:
                    rel = f'ILSVRC2012_val_{c * count + i + 1:08d}.JPEG'
                cv2.imwrite(osp.join(root, split, rel), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
                lines.append(f'{rel} {c}')
        with open(osp.join(root, 'meta', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
    return root


if __name__ == '__main__':  # python -m vitext.data.synthetic: the `vitext make-data` command
    from vitext.cli.make_data import main
    main()
