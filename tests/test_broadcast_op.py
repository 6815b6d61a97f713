"""Context Broadcasting operators on hand-computed inputs (torch only)."""
import pytest
import torch

from vitext.ops import ContextBroadcast, ScaledContextBroadcast, context_broadcast


def test_cb_tokens_hand_computed():
    x = torch.tensor([[[1., 2.], [3., 4.]]])  # B=1, N=2, C=2; mean token (2, 3)
    expected = torch.tensor([[[1.5, 2.5], [2.5, 3.5]]])
    torch.testing.assert_close(context_broadcast(x), expected)
    torch.testing.assert_close(ContextBroadcast()(x), expected)


def test_cbs_hand_computed():
    x = torch.tensor([[[1., 2.], [3., 4.]]])
    scale = torch.tensor([2., 0.])  # broadcast mean becomes (4, 0)
    torch.testing.assert_close(context_broadcast(x, scale),
                               torch.tensor([[[2.5, 1.0], [3.5, 2.0]]]))


def test_maps_equal_tokens():
    x = torch.randn(2, 5, 3, 4)  # B, C, H, W
    tokens = x.flatten(2).transpose(1, 2)
    scale = torch.randn(5)
    for s in (None, scale):
        maps = context_broadcast(x, s)
        torch.testing.assert_close(maps.flatten(2).transpose(1, 2), context_broadcast(tokens, s))


def test_cbs_starts_as_cb_and_learns_c_scales():
    op = ScaledContextBroadcast(7)
    assert sum(p.numel() for p in op.parameters()) == 7
    x = torch.randn(3, 11, 7)
    torch.testing.assert_close(op(x), ContextBroadcast()(x))
    op(x).sum().backward()
    assert op.scale.grad is not None and op.scale.grad.abs().sum() > 0


def test_bad_shapes():
    with pytest.raises(ValueError, match=r'\(B, N, C\) tokens or \(B, C, H, W\) maps'):
        context_broadcast(torch.randn(4, 4))
    with pytest.raises(ValueError, match=r'scale has shape \(3,\), expected \(5,\)'):
        context_broadcast(torch.randn(2, 4, 5), torch.ones(3))
