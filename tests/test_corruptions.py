"""Common corruptions and occlusion of the robustness suite (docs/protocols.md#robustness)."""
import numpy as np
import pytest

from vitext.data.synthetic import ADE_OBJECTS, ADE_STUFF, render_scene
from vitext.evaluation.corruptions import CORRUPTIONS, SEVERITIES, corrupt
from vitext.data.transforms import CentreOcclusion, CommonCorruption

IMG = render_scene(0, 48, 64, ADE_STUFF, ADE_OBJECTS)[0]


def test_fifteen_types():
    assert len(CORRUPTIONS) == 15 and len(set(CORRUPTIONS)) == 15


@pytest.mark.parametrize('name', CORRUPTIONS)
def test_every_severity_valid_and_different(name):
    for severity in SEVERITIES:
        out = corrupt(IMG, name, severity, seed=3)
        assert out.dtype == np.uint8 and out.shape == IMG.shape
        assert not np.array_equal(out, IMG), (name, severity)
        assert np.array_equal(out, corrupt(IMG, name, severity, seed=3))  # deterministic


def test_severity_increases_damage_for_noise():
    damage = [np.abs(corrupt(IMG, 'gaussian_noise', s).astype(int) - IMG).mean()
              for s in SEVERITIES]
    assert damage == sorted(damage)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown corruption 'rain'"):
        corrupt(IMG, 'rain', 1)
    with pytest.raises(ValueError, match='severity must be one of'):
        corrupt(IMG, 'fog', 6)
    with pytest.raises(ValueError, match='HxWx3 uint8'):
        corrupt(IMG.astype(np.float32), 'fog', 1)
    with pytest.raises(ValueError, match="unknown corruption 'rain'"):
        CommonCorruption('rain', 1)


def test_corrupt_transform_is_per_image():
    a = CommonCorruption('shot_noise', 2)(dict(img=IMG.copy(), img_path='a.jpg'))['img']
    again = CommonCorruption('shot_noise', 2)(dict(img=IMG.copy(), img_path='a.jpg'))['img']
    b = CommonCorruption('shot_noise', 2)(dict(img=IMG.copy(), img_path='b.jpg'))['img']
    assert np.array_equal(a, again) and not np.array_equal(a, b)


def test_centre_occlusion_zeroes_the_central_quarter():
    img = np.full((224, 224, 3), 7, np.uint8)
    out = CentreOcclusion()(dict(img=img))['img']
    zero = np.all(out == 0, axis=2)
    assert zero.sum() == 112 * 112
    assert zero[56:168, 56:168].all() and not zero[:56].any() and not zero[:, 168:].any()
    assert (img == 7).all()  # the input is not modified
    out = CentreOcclusion(fraction=0.5, fill=255)(dict(img=np.zeros((100, 60, 3), np.uint8)))
    filled = np.all(out['img'] == 255, axis=2)
    assert filled.sum() == 71 * 42 and filled[14:85, 9:51].all()


def test_registered_for_both_scopes():
    import vitext  # noqa: F401
    from mmdet.registry import TRANSFORMS as DET
    from mmseg.registry import TRANSFORMS as SEG
    assert SEG.get('CommonCorruption') is CommonCorruption and DET.get('CommonCorruption') is CommonCorruption
    assert SEG.get('CentreOcclusion') is CentreOcclusion
