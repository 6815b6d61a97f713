"""vitext/ops/window.py against timm's Swin (``SwinTransformerBlock`` with copied weights) where
no padding is needed, and pinned on maps that need padding.

Padding: vitext pads the map to a multiple of the window *before* the cyclic shift (as mmseg's
and the official Swin's detection/segmentation code do) and keeps the padded tokens out of every
image token's attention (they form regions of their own in the mask). mmseg and the official code
let image tokens attend to the zero-padded tokens; timm pads *after* the shift, also unmasked.
So on maps that are not a multiple of the window, vitext's border outputs differ from all three
(by design: the result then does not depend on the padding), and agree everywhere else."""
import itertools

import pytest
import torch
from timm.models.swin_transformer import SwinTransformerBlock

from vitext.models.layers import HierarchicalBlock
from vitext.ops import WindowAttention


def vitext_block(dim, heads, window, shift):
    attn = WindowAttention(dim=dim, num_heads=heads, window_size=window, shift=shift)
    return HierarchicalBlock(dim=dim, attn=attn, mlp_ratio=2.)


def timm_block(dim, heads, window, shift, size):
    return SwinTransformerBlock(dim=dim, input_resolution=size, num_heads=heads,
                                window_size=window, shift_size=shift, mlp_ratio=2.)


def randomised_pair(dim, heads, window, shift, size, dtype):
    torch.manual_seed(0)
    ours = vitext_block(dim, heads, window, shift)
    with torch.no_grad():
        for p in ours.parameters():
            p.normal_(0, 0.1)
    theirs = timm_block(dim, heads, window, shift, size)
    missing, unexpected = theirs.load_state_dict(ours.state_dict(), strict=False)
    assert not unexpected and all('relative_position_index' in k or 'attn_mask' in k
                                  for k in missing)
    return ours.to(dtype).eval(), theirs.to(dtype).eval()


@pytest.mark.parametrize('dtype,tol', [(torch.float32, 1e-6), (torch.float64, 1e-10)])
@pytest.mark.parametrize('size,shift', [((14, 21), 0), ((14, 21), 3), ((7, 7), 3)])
def test_matches_timm_swin_block_without_padding(dtype, tol, size, shift):
    """(7, 7) with shift 3: a map that fits one window is not shifted, in both."""
    ours, theirs = randomised_pair(32, 4, 7, shift, size, dtype)
    x = torch.randn(2, *size, 32, dtype=dtype)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=tol)


def reference_window_attention(layer: WindowAttention, x: torch.Tensor) -> torch.Tensor:
    """From the definition, one query at a time: pad to the window multiple, roll by -shift;
    a query attends to the image tokens of its window that did not wrap around differently
    from it (the shifted-window rule), never to padding; relative position bias by offset."""
    B, H, W, C = x.shape
    ws, nh = layer.window_size, layer.num_heads
    d = C // nh
    shift = 0 if H <= ws and W <= ws else layer.shift
    Hp, Wp = -(-H // ws) * ws, -(-W // ws) * ws
    q, k, v = layer.qkv(x).view(B, H, W, 3, nh, d).unbind(3)
    table = layer.relative_position_bias_table
    out = torch.zeros(B, H, W, nh, d, dtype=x.dtype)

    def rolled(i, j):  # position after padding and rolling by -shift
        return (i - shift) % Hp, (j - shift) % Wp

    for i, j in itertools.product(range(H), range(W)):
        ri, rj = rolled(i, j)
        keys = []
        for a, b in itertools.product(range(H), range(W)):
            ra, rb = rolled(a, b)
            same_window = (ra // ws, rb // ws) == (ri // ws, rj // ws)
            no_wrap = (ra - ri, rb - rj) == (a - i, b - j)
            if same_window and no_wrap:
                keys.append((a, b, ra, rb))
        for h in range(nh):
            logits = torch.stack([
                (q[:, i, j, h] * d ** -0.5 * k[:, a, b, h]).sum(-1)
                + table[(ri - ra + ws - 1) * (2 * ws - 1) + (rj - rb + ws - 1), h]
                for a, b, ra, rb in keys], dim=-1)
            weights = logits.softmax(-1)
            out[:, i, j, h] = sum(weights[:, n, None] * v[:, a, b, h]
                                  for n, (a, b, _, _) in enumerate(keys))
    return layer.proj(out.reshape(B, H, W, C))


@pytest.mark.parametrize('size,shift', [((10, 13), 0), ((10, 13), 3), ((9, 16), 2), ((5, 6), 2)])
def test_padding_is_kept_out_of_attention(size, shift):
    """Pinned behaviour on maps that need padding (fp64 against the definition above)."""
    torch.manual_seed(0)
    layer = WindowAttention(dim=8, num_heads=2, window_size=4 if size == (5, 6) else 7,
                            shift=shift).double().eval()
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_(0, 0.5)
        x = torch.randn(2, *size, 8, dtype=torch.float64)
        torch.testing.assert_close(layer(x), reference_window_attention(layer, x),
                                   rtol=0, atol=1e-10)


def test_padded_border_differs_from_timm_by_design():
    """timm lets border tokens attend to the zero padding; vitext does not. Windows without
    padding agree."""
    ours, theirs = randomised_pair(16, 2, 7, 0, (10, 13), torch.float64)
    x = torch.randn(1, 10, 13, 16, dtype=torch.float64)
    with torch.no_grad():
        a, b = ours(x), theirs(x)
    torch.testing.assert_close(a[:, :7, :7], b[:, :7, :7], rtol=0, atol=1e-10)
    assert (a[:, 7:] - b[:, 7:]).abs().max() > 1e-3
