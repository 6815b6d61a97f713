"""The 15 common corruptions (Hendrycks & Dietterich's ImageNet-C types) at severities 1-5,
written with numpy, OpenCV and SciPy (the ``imagecorruptions`` package breaks on current
scikit-image). Images are HxWx3 uint8 arrays, BGR as OpenCV/mmcv load them (only ``snow``'s grey
level depends on the order; ``brightness`` raises HSV's V, the channel maximum).

The severity parameters follow ImageNet-C's; frost and snow textures, which ImageNet-C reads from
photos, are synthesised here. Each call draws its randomness from the ``rng`` it is given, so a
(seed, image) pair always gives the same corrupted image.
"""
from typing import Callable, Dict, Tuple

import cv2
import numpy as np
from scipy import ndimage

NOISE = ('gaussian_noise', 'shot_noise', 'impulse_noise')
BLUR = ('defocus_blur', 'glass_blur', 'motion_blur', 'zoom_blur')
WEATHER = ('snow', 'frost', 'fog', 'brightness')
DIGITAL = ('contrast', 'elastic_transform', 'pixelate', 'jpeg_compression')
CORRUPTIONS = NOISE + BLUR + WEATHER + DIGITAL
SEVERITIES = (1, 2, 3, 4, 5)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] -> uint8."""
    return np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)


def gaussian_noise(img, severity, rng):
    c = (.08, .12, .18, .26, .38)[severity - 1]
    return _to_uint8(img / 255. + rng.normal(size=img.shape, scale=c))


def shot_noise(img, severity, rng):
    c = (60, 25, 12, 5, 3)[severity - 1]
    return _to_uint8(rng.poisson(img / 255. * c) / c)


def impulse_noise(img, severity, rng):
    amount = (.03, .06, .09, .17, .27)[severity - 1]
    out = img.copy()
    mask = rng.random(img.shape)
    out[mask < amount / 2] = 0
    out[(mask >= amount / 2) & (mask < amount)] = 255
    return out


def _disk(radius: float, alias_blur: float) -> np.ndarray:
    size = int(np.ceil(radius))
    ax = np.arange(-size, size + 1)
    xx, yy = np.meshgrid(ax, ax)
    kernel = (xx ** 2 + yy ** 2 <= radius ** 2).astype(np.float32)
    kernel /= kernel.sum()
    return cv2.GaussianBlur(kernel, (3, 3), alias_blur)


def defocus_blur(img, severity, rng):
    radius, alias = ((3, .1), (4, .5), (6, .5), (8, .5), (10, .5))[severity - 1]
    return cv2.filter2D(img, -1, _disk(radius, alias), borderType=cv2.BORDER_REFLECT)


def glass_blur(img, severity, rng):
    sigma, delta, iterations = ((.7, 1, 2), (.9, 2, 1), (1, 2, 3), (1.1, 3, 2),
                                (1.5, 4, 2))[severity - 1]
    x = cv2.GaussianBlur(img, (0, 0), sigma)
    h, w = x.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(iterations):  # each pixel takes a random neighbour within delta
        dy = rng.integers(-delta, delta + 1, size=(h, w))
        dx = rng.integers(-delta, delta + 1, size=(h, w))
        x = x[np.clip(yy + dy, 0, h - 1), np.clip(xx + dx, 0, w - 1)]
    return cv2.GaussianBlur(x, (0, 0), sigma)


def _motion_kernel(radius: int, sigma: float, angle: float) -> np.ndarray:
    size = 2 * radius + 1
    weights = np.exp(-np.arange(radius + 1) ** 2 / (2 * sigma ** 2))
    weights /= weights.sum()
    kernel = np.zeros((size, size), np.float32)
    for i, wgt in enumerate(weights):  # a one-sided streak from the centre
        y = int(round(radius + i * np.sin(angle)))
        x = int(round(radius + i * np.cos(angle)))
        kernel[y, x] += wgt
    return kernel


def motion_blur(img, severity, rng):
    radius, sigma = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))[severity - 1]
    kernel = _motion_kernel(radius, sigma, rng.uniform(-np.pi / 4, np.pi / 4))
    return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT)


def _zoom_centre(img: np.ndarray, factor: float) -> np.ndarray:
    h, w = img.shape[:2]
    zoomed = cv2.resize(img, (int(round(w * factor)), int(round(h * factor))),
                        interpolation=cv2.INTER_LINEAR)
    top, left = (zoomed.shape[0] - h) // 2, (zoomed.shape[1] - w) // 2
    return zoomed[top:top + h, left:left + w]


def zoom_blur(img, severity, rng):
    factors = (np.arange(1, 1.11, .01), np.arange(1, 1.16, .01), np.arange(1, 1.21, .02),
               np.arange(1, 1.26, .02), np.arange(1, 1.31, .03))[severity - 1]
    acc = img.astype(np.float32)
    for f in factors[1:]:
        acc += _zoom_centre(img, f)
    return np.clip(np.rint(acc / len(factors)), 0, 255).astype(np.uint8)


def _plasma(shape: Tuple[int, int], rng, decay: float) -> np.ndarray:
    """Fractal noise in [0, 1] (octaves of upsampled white noise, amplitude x 1/decay)."""
    h, w = shape
    out = np.zeros(shape, np.float32)
    amp, size = 1.0, 2
    while size < 2 * max(h, w):
        layer = rng.random((size, size)).astype(np.float32)
        out += amp * cv2.resize(layer, (w, h), interpolation=cv2.INTER_CUBIC)
        amp /= decay
        size *= 2
    out -= out.min()
    return out / max(out.max(), 1e-6)


def fog(img, severity, rng):
    strength, decay = ((1.5, 2), (2., 2), (2.5, 1.7), (2.5, 1.5), (3., 1.4))[severity - 1]
    x = img / 255.
    peak = x.max()
    x = x + strength * _plasma(img.shape[:2], rng, decay)[..., None]
    return _to_uint8(x * peak / (peak + strength))


def frost(img, severity, rng):
    weight_img, weight_frost = ((1, .4), (.8, .6), (.7, .7), (.65, .7), (.6, .75))[severity - 1]
    h, w = img.shape[:2]
    # Ice crystals: sharp fractal streaks, brighter and blue-white.
    crystals = _plasma((h, w), rng, 1.2) ** 3
    streaks = cv2.filter2D(crystals, -1, _motion_kernel(4, 2, rng.uniform(0, np.pi)))
    texture = np.clip(0.5 * crystals + streaks, 0, 1)[..., None] * np.array([.9, .95, 1.])
    return _to_uint8(weight_img * img / 255. + weight_frost * texture)


def snow(img, severity, rng):
    mean, std, zoom, threshold, radius, sigma, blend = (
        (.1, .3, 3, .5, 10, 4, .8), (.2, .3, 2, .5, 12, 4, .7), (.55, .3, 4, .9, 12, 8, .7),
        (.55, .3, 4.5, .85, 12, 8, .65), (.55, .3, 2.5, .85, 12, 12, .55))[severity - 1]
    h, w = img.shape[:2]
    layer = rng.normal(mean, std, size=(int(np.ceil(h / zoom)), int(np.ceil(w / zoom))))
    layer = cv2.resize(layer.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    layer[layer < threshold] = 0
    layer = cv2.filter2D(np.clip(layer, 0, 1), -1,
                         _motion_kernel(radius, sigma, rng.uniform(-3 * np.pi / 4, -np.pi / 4)))
    x = img / 255.
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)[..., None] / 255. * 1.5 + .5
    x = blend * x + (1 - blend) * np.maximum(x, grey)
    x = x + layer[..., None] + np.rot90(layer, k=2)[..., None]
    return _to_uint8(x)


def brightness(img, severity, rng):
    c = (.1, .2, .3, .4, .5)[severity - 1]
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 2] = np.clip(hsv[..., 2] + c * 255, 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


def contrast(img, severity, rng):
    c = (.4, .3, .2, .1, .05)[severity - 1]
    x = img / 255.
    means = x.mean(axis=(0, 1), keepdims=True)
    return _to_uint8((x - means) * c + means)


def elastic_transform(img, severity, rng):
    # (displacement scale, smoothing sigma, affine jitter), relative to the image size.
    alpha, sigma, affine = ((.25, .02, .08), (.3, .02, .09), (.35, .03, .1), (.4, .03, .11),
                            (.45, .035, .12))[severity - 1]
    h, w = img.shape[:2]
    size = min(h, w)
    centre = np.float32([w / 2, h / 2])
    square = np.float32([centre + [-size / 3, -size / 3], centre + [size / 3, -size / 3],
                         centre + [-size / 3, size / 3]])
    jittered = square + rng.uniform(-affine * size, affine * size, size=square.shape)
    warped = cv2.warpAffine(img, cv2.getAffineTransform(square, jittered.astype(np.float32)),
                            (w, h), borderMode=cv2.BORDER_REFLECT_101)
    # A smooth random field, scaled so that its largest displacement is alpha * size / 8.
    amplitude = alpha * size / 8
    fields = []
    for _ in range(2):
        field = ndimage.gaussian_filter(rng.uniform(-1, 1, size=(h, w)), sigma * size)
        fields.append((field / max(np.abs(field).max(), 1e-12) * amplitude).astype(np.float32))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(warped, xx + fields[0], yy + fields[1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT_101)


def pixelate(img, severity, rng):
    c = (.6, .5, .4, .3, .25)[severity - 1]
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, int(w * c)), max(1, int(h * c))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


def jpeg_compression(img, severity, rng):
    quality = (25, 18, 15, 10, 7)[severity - 1]
    ok, buf = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError('JPEG encoding failed')
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)


_FUNCTIONS: Dict[str, Callable] = {name: globals()[name] for name in CORRUPTIONS}


def corrupt(img: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """Apply corruption ``name`` at ``severity`` (1-5) to an HxWx3 uint8 image; deterministic
    for a given (image, name, severity, seed). Returns a new HxWx3 uint8 image."""
    if name not in _FUNCTIONS:
        raise ValueError(f'unknown corruption {name!r}; expected one of {CORRUPTIONS}')
    if severity not in SEVERITIES:
        raise ValueError(f'severity must be one of {SEVERITIES}, got {severity!r}')
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'expected an HxWx3 uint8 image, got {img.dtype} {img.shape}')
    rng = np.random.default_rng([seed, CORRUPTIONS.index(name), severity])
    out = _FUNCTIONS[name](img, severity, rng)
    return np.ascontiguousarray(out, dtype=np.uint8).reshape(img.shape)
