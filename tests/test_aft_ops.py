"""AFT operators against slow references written straight from the formula (fp64)."""
import pytest
import torch

from vitext.ops import (AFTConv, AFTFull, AFTSimple, aft_conv, aft_full, aft_local, aft_simple,
                        local_window_mask)

torch.manual_seed(0)


def ref_aft(q, k, v, bias):
    """Y_t = sigmoid(Q_t) * sum_t' exp(K_t' + w_tt') V_t' / sum_t' exp(K_t' + w_tt'), by loops."""
    B, T, d = q.shape
    y = torch.zeros_like(q)
    for t in range(T):
        num = torch.zeros(B, d, dtype=q.dtype)
        den = torch.zeros(B, d, dtype=q.dtype)
        for s in range(T):
            e = torch.exp(k[:, s] + bias(t, s))
            num += e * v[:, s]
            den += e
        y[:, t] = torch.sigmoid(q[:, t]) * num / den
    return y


def ref_aft_conv(q, k, v, weight):
    """2-d AFT-local per head: bias w^i[di, dj] inside the s x s window, 0 outside."""
    B, C, H, W = q.shape
    heads, s = weight.shape[0], weight.shape[-1]
    half, per_head = s // 2, C // heads
    y = torch.zeros_like(q)
    for c in range(C):
        i = c // per_head
        for y0 in range(H):
            for x0 in range(W):
                num = torch.zeros(B, dtype=q.dtype)
                den = torch.zeros(B, dtype=q.dtype)
                for y1 in range(H):
                    for x1 in range(W):
                        dy, dx = y1 - y0, x1 - x0
                        b = weight[i, dy + half, dx + half] if abs(dy) <= half and \
                            abs(dx) <= half else 0.
                        e = torch.exp(k[:, i, y1, x1] + b)
                        num += e * v[:, c, y1, x1]
                        den += e
                y[:, c, y0, x0] = torch.sigmoid(q[:, c, y0, x0]) * num / den
    return y


def rand(*shape):
    return torch.randn(*shape, dtype=torch.float64)


def test_aft_full_matches_reference():
    q, k, v, w = rand(2, 7, 3), rand(2, 7, 3), rand(2, 7, 3), rand(7, 7)
    torch.testing.assert_close(aft_full(q, k, v, w), ref_aft(q, k, v, lambda t, s: w[t, s]))


def test_aft_local_1d_keeps_global_terms():
    q, k, v, w = rand(2, 8, 3), rand(2, 8, 3), rand(2, 8, 3), rand(8, 8)
    window = 3
    ref = ref_aft(q, k, v, lambda t, s: w[t, s] if abs(t - s) < window else 0.)
    torch.testing.assert_close(aft_local(q, k, v, w, window), ref)


def test_aft_local_2d_grid_with_class_token():
    q, k, v, w = rand(1, 1 + 12, 2), rand(1, 13, 2), rand(1, 13, 2), rand(13, 13)

    def bias(t, s):
        if t == 0 or s == 0:
            return w[t, s]
        (i0, j0), (i1, j1) = divmod(t - 1, 4), divmod(s - 1, 4)
        return w[t, s] if abs(i0 - i1) <= 1 and abs(j0 - j1) <= 1 else 0.

    torch.testing.assert_close(aft_local(q, k, v, w, 3, grid=(3, 4), num_prefix_tokens=1),
                               ref_aft(q, k, v, bias))


def test_aft_simple_matches_reference():
    q, k, v = rand(2, 6, 4), rand(2, 6, 4), rand(2, 6, 4)
    torch.testing.assert_close(aft_simple(q, k, v), ref_aft(q, k, v, lambda t, s: 0.))


@pytest.mark.parametrize('heads,s,H,W', [(2, 3, 4, 5), (1, 5, 3, 3), (4, 3, 5, 2)])
def test_aft_conv_matches_2d_reference(heads, s, H, W):
    C = 4
    q, v = rand(2, C, H, W), rand(2, C, H, W)
    k, weight = rand(2, heads, H, W), rand(heads, s, s)
    torch.testing.assert_close(aft_conv(q, k, v, weight), ref_aft_conv(q, k, v, weight))


def test_aft_conv_inference_chunks_equal_whole():
    q, v, k, weight = rand(2, 8, 5, 4), rand(2, 8, 5, 4), rand(2, 4, 5, 4), rand(4, 3, 3)
    with torch.no_grad():
        whole = aft_conv(q, k, v, weight, head_chunks=1)
        for chunks in (2, 3, 4, 8):
            torch.testing.assert_close(aft_conv(q, k, v, weight, head_chunks=chunks), whole)
    q.requires_grad_()
    torch.testing.assert_close(aft_conv(q, k, v, weight), whole)  # autograd path


def test_aft_conv_equals_aft_local_2d():
    C, H, W, s = 3, 4, 5, 3
    q, v, k, weight = rand(1, C, H, W), rand(1, C, H, W), rand(1, 1, H, W), rand(1, s, s)
    # The same layer as AFT-local on the token grid, w_tt' taken from the kernel by offset.
    T = H * W
    w = torch.zeros(T, T, dtype=torch.float64)
    for t in range(T):
        for u in range(T):
            (i0, j0), (i1, j1) = divmod(t, W), divmod(u, W)
            if abs(i1 - i0) <= 1 and abs(j1 - j0) <= 1:
                w[t, u] = weight[0, i1 - i0 + 1, j1 - j0 + 1]

    def tokens(x):
        return x.flatten(2).transpose(1, 2)

    local = aft_local(tokens(q), tokens(k).expand(-1, -1, C), tokens(v), w, s, grid=(H, W))
    torch.testing.assert_close(tokens(aft_conv(q, k, v, weight)), local)


def test_gradcheck():
    q, k, v = (rand(1, 4, 2).requires_grad_() for _ in range(3))
    w = rand(4, 4).requires_grad_()
    assert torch.autograd.gradcheck(aft_full, (q, k, v, w))
    assert torch.autograd.gradcheck(lambda *a: aft_local(*a, 2), (q, k, v, w))
    assert torch.autograd.gradcheck(aft_simple, (q, k, v))
    qc, vc = rand(1, 2, 3, 3).requires_grad_(), rand(1, 2, 3, 3).requires_grad_()
    kc, wc = rand(1, 2, 3, 3).requires_grad_(), rand(2, 3, 3).requires_grad_()
    assert torch.autograd.gradcheck(aft_conv, (qc, kc, vc, wc))


@pytest.mark.parametrize('heads,s,H,W,C,chunks', [(2, 3, 4, 5, 4, 1), (1, 5, 3, 3, 3, 1),
                                                  (4, 3, 5, 2, 4, 3), (3, 7, 6, 5, 6, 2),
                                                  (2, 1, 3, 4, 4, 2)])
def test_aft_conv_custom_backward(heads, s, H, W, C, chunks, monkeypatch):
    """The custom backward (recomputing per group of heads, kernel gradient by correlation)
    equals autograd through the plain form in fp64, and passes gradcheck; odd sizes and
    kernels 1-7, heads split into uneven groups (forward and backward)."""
    from vitext.ops.aft import _aft_conv_heads, _AFTConvFunction
    q, v = rand(2, C, H, W), rand(2, C, H, W)
    monkeypatch.setattr(_AFTConvFunction, 'BACKWARD_CHUNK_ELEMENTS', -(-q.numel() // chunks))
    k, weight = rand(2, heads, H, W), rand(heads, s, s)
    params = [t.requires_grad_() for t in (q, k, v, weight)]
    out = aft_conv(*params, head_chunks=chunks)
    torch.testing.assert_close(out, ref_aft_conv(q, k, v, weight))
    grad = rand(*out.shape)
    got = torch.autograd.grad(out, params, grad)
    expected = torch.autograd.grad(_aft_conv_heads(*params, inplace=False), params, grad)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-10)
    assert torch.autograd.gradcheck(lambda *a: aft_conv(*a, head_chunks=chunks), params)


def test_aft_conv_custom_backward_fp32_channels_last():
    """The layer's layout (channels-last views of the projections) in fp32."""
    from vitext.ops.aft import _aft_conv_heads
    B, C, heads, H, W = 2, 8, 4, 7, 5
    maps = [torch.randn(B, H, W, n).permute(0, 3, 1, 2) for n in (C, heads, C)]
    weight = torch.randn(heads, 5, 5)
    params = [t.requires_grad_() for t in (*maps, weight)]
    out = aft_conv(*params)
    ref = _aft_conv_heads(*params, inplace=False)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(out)
    for g, e in zip(torch.autograd.grad(out, params, grad), torch.autograd.grad(ref, params, grad)):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-4)


def test_conv_layer_at_init_is_aft_simple():
    layer = AFTConv(dim=8, num_heads=4, kernel_size=5).double()
    w = layer.position_weight()
    assert torch.equal(w, torch.zeros_like(w))  # gamma = beta = 0
    x = rand(2, 12, 8)
    q, k, v = layer.q(x), layer.k(x).repeat_interleave(2, dim=2), layer.v(x)
    torch.testing.assert_close(layer(x, (3, 4)), layer.proj(aft_simple(q, k, v)))
    assert layer.pos_weight.std() > 0.5


def test_conv_reparameterisation():
    layer = AFTConv(dim=4, num_heads=2, kernel_size=3)
    with torch.no_grad():
        layer.pos_gamma.copy_(torch.tensor([2., 0.5]))
        layer.pos_beta.copy_(torch.tensor([1., -1.]))
    w = layer.position_weight()
    torch.testing.assert_close(w.mean(dim=(1, 2)), torch.tensor([1., -1.]))
    torch.testing.assert_close(w.std(dim=(1, 2)), torch.tensor([2., 0.5]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('scale', [1e3, -1e3])
def test_stable_for_large_keys(scale):
    q, v = torch.randn(2, 8, 6, 6), torch.randn(2, 8, 6, 6)
    k, weight = torch.randn(2, 4, 6, 6) * scale, torch.randn(4, 3, 3)
    assert torch.isfinite(aft_conv(q, k, v, weight)).all()
    qt, kt, vt = torch.randn(2, 9, 4), torch.randn(2, 9, 4) * scale, torch.randn(2, 9, 4)
    for out in (aft_full(qt, kt, vt, torch.randn(9, 9)), aft_simple(qt, kt, vt),
                aft_local(qt, kt, vt, torch.randn(9, 9), 2)):
        assert torch.isfinite(out).all()
    k.requires_grad_()
    aft_conv(q, k, v, weight).sum().backward()
    assert torch.isfinite(k.grad).all()


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_half_precision_autocast_finite_and_close(dtype):
    torch.manual_seed(1)
    layer = AFTConv(dim=16, num_heads=4, kernel_size=3)
    with torch.no_grad():
        layer.pos_gamma.fill_(1.)
    x = torch.randn(2, 36, 16)
    ref = layer(x, (6, 6))
    with torch.autocast('cpu', dtype=dtype):
        out = layer(x, (6, 6))
    torch.testing.assert_close(out.float(), ref, rtol=0.05, atol=0.05)
    # Activations of size ~1e3 (keys far beyond exp's range in half precision) stay finite,
    # through the backward pass too.
    full = AFTFull(16, grid=(6, 6), num_prefix_tokens=0)
    big = (x * 1e3).requires_grad_()
    with torch.autocast('cpu', dtype=dtype):
        outs = [layer(big, (6, 6)), full(big, (6, 6)), AFTSimple(16)(big)]
    assert all(torch.isfinite(o).all() for o in outs)
    sum(o.float().sum() for o in outs).backward()
    assert torch.isfinite(big.grad).all()


def test_full_layer_resizes_bias_to_grid():
    layer = AFTFull(8, grid=(4, 4), num_prefix_tokens=1, factor_dim=5)
    assert layer.position_bias((4, 4)).shape == (17, 17)
    assert layer.position_bias((6, 3)).shape == (19, 19)
    assert layer(torch.randn(2, 19, 8), (6, 3)).shape == (2, 19, 8)
    local = AFTFull(8, grid=(4, 4), window=3)
    assert local(torch.randn(1, 17, 8), (4, 4)).shape == (1, 17, 8)
    assert AFTSimple(8)(torch.randn(1, 5, 8)).shape == (1, 5, 8)


def test_bad_shapes():
    with pytest.raises(ValueError, match=r'expected k \(B, heads=2, H, W\)'):
        aft_conv(torch.randn(1, 4, 3, 3), torch.randn(1, 3, 3, 3), torch.randn(1, 4, 3, 3),
                 torch.randn(2, 3, 3))
    with pytest.raises(ValueError, match='odd s'):
        aft_conv(torch.randn(1, 4, 3, 3), torch.randn(1, 2, 3, 3), torch.randn(1, 4, 3, 3),
                 torch.randn(2, 2, 2))
    with pytest.raises(ValueError, match=r'w has shape \(3, 3\), expected \(4, 4\)'):
        aft_full(torch.randn(1, 4, 2), torch.randn(1, 4, 2), torch.randn(1, 4, 2),
                 torch.randn(3, 3))
    with pytest.raises(ValueError, match='do not make 1 prefix tokens and a 3x3 grid'):
        local_window_mask(9, 3, grid=(3, 3), num_prefix_tokens=1)
