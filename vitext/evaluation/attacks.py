"""FGSM and PGD attacks on a segmentor, in raw pixel space (docs/protocols.md#robustness).

The perturbation lives on the 0-255 pixels the data loader yields, before the model's own data
preprocessor (channel flip, mean/std normalisation, padding), so epsilon is in pixel units
(``eps=8`` is 8/255) whatever the model's normalisation. Each step maximises the model's own
segmentation loss (decode + auxiliary heads) against the ground truth; the adversarial image is
kept inside the L-inf epsilon-ball around the clean image and inside [0, 255]. Adversarial images
are returned as float tensors (not re-quantised to uint8).
"""
from typing import List, Optional, Sequence

import torch
from torch import Tensor


def segmentation_loss(model, inputs: Sequence[Tensor], data_samples) -> Tensor:
    """The sum of the model's loss terms for images ``inputs`` (C, H, W pixel tensors)."""
    batch = model.data_preprocessor(dict(inputs=list(inputs), data_samples=data_samples),
                                    training=False)
    losses = model.loss(batch['inputs'], batch['data_samples'])
    total = 0.
    for name, value in losses.items():
        if 'loss' in name:
            total = total + (sum(value) if isinstance(value, (list, tuple)) else value)
    return total


def pgd_attack(model, data: dict, eps: float, steps: int = 10,
               step_size: Optional[float] = None, random_start: bool = True,
               seed: int = 0) -> List[Tensor]:
    """Projected gradient ascent on the segmentation loss.

    Args:
        model: an mmseg segmentor (its data_preprocessor and ``loss`` are used; it is put in
            eval mode, so BN statistics and dropout do not change).
        data: a collated batch as the test data loader yields it: ``inputs`` (list of uint8
            C x H x W tensors) and ``data_samples`` with ``gt_sem_seg``.
        eps: L-inf radius in pixel units (0-255 scale).
        steps, step_size: iterations and step (pixel units; default 2.5 * eps / steps).
        random_start: start from a uniform point in the ball (seeded by ``seed``).
    Returns:
        the adversarial images, float tensors shaped like ``data['inputs']``.
    """
    if eps < 0 or steps < 1:
        raise ValueError(f'need eps >= 0 and steps >= 1, got eps={eps}, steps={steps}')
    model.eval()
    device = next(model.parameters()).device
    clean = [x.to(device).float() for x in data['inputs']]
    step_size = 2.5 * eps / steps if step_size is None else step_size
    generator = torch.Generator(device='cpu').manual_seed(seed)

    def project(delta: Tensor, x: Tensor) -> Tensor:
        delta = delta.clamp(-eps, eps)
        return (x + delta).clamp(0, 255) - x

    deltas = [project((torch.rand(x.shape, generator=generator).to(device) * 2 - 1) * eps, x)
              if random_start else torch.zeros_like(x) for x in clean]
    for _ in range(steps):
        adv = [(x + d).requires_grad_(True) for x, d in zip(clean, deltas)]
        with torch.enable_grad():
            loss = segmentation_loss(model, adv, data['data_samples'])
            grads = torch.autograd.grad(loss, adv)
        deltas = [project(d + step_size * g.sign(), x) for x, d, g in zip(clean, deltas, grads)]
    return [x + d for x, d in zip(clean, deltas)]


def fgsm_attack(model, data: dict, eps: float) -> List[Tensor]:
    """FGSM: one signed-gradient step of size eps from the clean image."""
    return pgd_attack(model, data, eps, steps=1, step_size=eps, random_start=False)
