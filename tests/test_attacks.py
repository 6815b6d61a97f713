"""FGSM/PGD on a (randomly initialised) demo segmentor and synthetic ADE20K images."""
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope

from vitext.preflight import load_config
from vitext.evaluation.attacks import fgsm_attack, pgd_attack, segmentation_loss

from conftest import DEMO_SEG


@pytest.fixture(scope='module')
def model_and_batch(ade_root):
    from mmseg.registry import DATASETS, MODELS
    cfg = load_config(DEMO_SEG, {'val_dataloader.dataset.data_root': ade_root})
    with DefaultScope.overwrite_default_scope('mmseg'):
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        model.init_weights()
        dataset = DATASETS.build(cfg.val_dataloader.dataset)
    batch = pseudo_collate([dataset[0], dataset[1]])
    return model.eval(), batch


def test_fgsm_with_zero_eps_is_clean(model_and_batch):
    model, batch = model_and_batch
    adv = fgsm_attack(model, batch, eps=0.)
    for a, x in zip(adv, batch['inputs']):
        assert torch.equal(a, x.float())
    with torch.no_grad():
        clean_pred = model.test_step(batch)
        adv_pred = model.test_step(dict(inputs=adv, data_samples=batch['data_samples']))
    for c, a in zip(clean_pred, adv_pred):
        assert torch.equal(c.pred_sem_seg.data, a.pred_sem_seg.data)


@pytest.mark.parametrize('attack', ['fgsm', 'pgd'])
def test_attack_raises_loss_within_budget(model_and_batch, attack):
    model, batch = model_and_batch
    eps = 8.
    if attack == 'fgsm':
        adv = fgsm_attack(model, batch, eps)
    else:
        adv = pgd_attack(model, batch, eps, steps=3, seed=1)
    with torch.no_grad():
        clean_loss = segmentation_loss(model, [x.float() for x in batch['inputs']],
                                       batch['data_samples'])
        adv_loss = segmentation_loss(model, adv, batch['data_samples'])
    assert adv_loss > clean_loss
    for a, x in zip(adv, batch['inputs']):
        assert (a - x.float()).abs().max() <= eps + 1e-4
        assert a.min() >= 0 and a.max() <= 255
    assert all(p.grad is None for p in model.parameters())


def test_bad_arguments(model_and_batch):
    model, batch = model_and_batch
    with pytest.raises(ValueError, match='need eps >= 0 and steps >= 1'):
        pgd_attack(model, batch, eps=-1)
