"""The switch of a whole model to its deploy form (vitext/models/deploy.py): every
re-parameterisable layer is switched exactly once, whether the walk starts at a model holding a
backbone, at the backbone itself or meets a layer held twice, and the names it returns are
those of the switched modules."""
import pytest
import torch
from torch import nn

from vitext.models.backbones import SlidePVT, SlideSwinTransformer
from vitext.models.deploy import switch_to_deploy
from vitext.ops.slide import SlideAttention

TINY = {
    SlideSwinTransformer: dict(arch=dict(embed_dims=16, depths=(1, 2, 1, 1),
                                         num_heads=(1, 2, 2, 4)), window_size=3),
    SlidePVT: dict(arch=dict(depths=(1, 2, 1, 1), embed_dims=(16, 32, 40, 64),
                             num_heads=(1, 2, 2, 4)), img_size=64),
}


class Segmentor(nn.Module):
    """A backbone and a head, as mmseg's models hold them."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Conv2d(64, 2, 1)


@pytest.fixture
def switch_calls(monkeypatch):
    """Each call of a SlideAttention's switch: (layer id, whether it was switched already)."""
    calls = []
    switch = SlideAttention.switch_to_deploy

    def recording_switch(self):
        calls.append((id(self), self.deploy))
        return switch(self)

    monkeypatch.setattr(SlideAttention, 'switch_to_deploy', recording_switch)
    return calls


def slide_layers(model):
    return [(name, m) for name, m in model.named_modules() if isinstance(m, SlideAttention)]


@pytest.mark.parametrize('cls', list(TINY), ids=lambda cls: cls.__name__)
@pytest.mark.parametrize('start', ['model', 'backbone function', 'backbone method'])
def test_each_layer_is_switched_once(cls, start, switch_calls):
    torch.manual_seed(0)
    model = Segmentor(cls(**TINY[cls], drop_path_rate=0.))
    layers = slide_layers(model.backbone)
    assert layers
    if start == 'model':
        names = switch_to_deploy(model)
        assert names == ['backbone'] + [f'backbone.{name}' for name, _ in layers]
    elif start == 'backbone function':
        assert switch_to_deploy(model.backbone) == [''] + [name for name, _ in layers]
    else:
        assert model.backbone.switch_to_deploy() == [name for name, _ in layers]
    assert switch_calls == [(id(layer), False) for _, layer in layers]
    assert all(layer.deploy for _, layer in layers)


def test_a_layer_held_twice_is_switched_once(switch_calls):
    layer = SlideAttention(8, 2)
    model = nn.ModuleDict(dict(first=layer, second=nn.Sequential(layer)))
    assert switch_to_deploy(model) == ['first']
    assert switch_calls == [(id(layer), False)] and layer.deploy


def test_deploy_outputs_equal_training_outputs_and_nothing_to_switch_is_empty():
    torch.manual_seed(0)
    model = SlidePVT(**TINY[SlidePVT], num_slide_stages=2, drop_path_rate=0.).eval()
    x = torch.randn(1, 3, 40, 56)
    with torch.no_grad():
        train = model(x)
        switch_to_deploy(model)
        deploy = model(x)
    for a, b in zip(train, deploy):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-5)
    assert switch_to_deploy(nn.Sequential(nn.Linear(2, 2))) == []
