"""Slide attention against a slow reference written from the definition (explicit k x k
neighbourhood of every pixel, zero padding, fp64), in its three evaluations and as a layer."""
import copy

import pytest
import torch
import torch.nn.functional as F

from vitext.ops import (SlideAttention, shift_kernels, slide_attention, slide_attention_copies,
                        slide_attention_qkv, slide_attention_tokens, slide_attention_unfold)
from vitext.ops.cpu_kernels import cpu_kernel

torch.manual_seed(0)


def ref_slide(q, k, v, rel, ks, convs):
    """Per pixel: neighbour n of channel c is sum over ``convs`` of
    sum_ij w[c*k^2+n, 0, i, j] * x_pad[c, y+i, x+j] + b[c*k^2+n]; key += rel[head, n];
    softmax over n of q.key; output = sum_n attn_n * value_n."""
    B, nh, d, H, W = q.shape
    k2, pad = ks * ks, ks // 2
    kp, vp = (F.pad(t, (pad, pad, pad, pad)) for t in (k, v))
    out = torch.zeros_like(q)
    for y in range(H):
        for x in range(W):
            def neighbours(xp):
                patch = xp[..., y:y + ks, x:x + ks]  # (B, nh, d, ks, ks)
                total = 0
                for w, b in convs:
                    total = total + torch.einsum('bhdij,dnij->bhdn', patch,
                                                 w.view(d, k2, ks, ks)) + b.view(d, k2)
                return total  # (B, nh, d, k^2)
            keys = neighbours(kp) + rel.view(1, nh, 1, k2)
            attn = (q[..., y, x].unsqueeze(-1) * keys).sum(2).softmax(-1)  # (B, nh, k^2)
            out[..., y, x] = (attn.unsqueeze(2) * neighbours(vp)).sum(-1)
    return out


def rand(*shape, scale=1.):
    return torch.randn(*shape, dtype=torch.float64) * scale


def random_case(ks, H, W, B=2, nh=2, d=3):
    q, k, v = (rand(B, nh, d, H, W) for _ in range(3))
    rel = rand(nh, ks * ks, scale=0.5)
    shift = (shift_kernels(d, ks).double(), rand(d * ks * ks, scale=0.3))
    deform = (rand(d * ks * ks, 1, ks, ks, scale=0.3), rand(d * ks * ks, scale=0.3))
    return q, k, v, rel, shift, deform


@pytest.mark.parametrize('ks,H,W', [(3, 5, 7), (3, 1, 4), (5, 6, 3), (1, 3, 3), (7, 4, 5)])
def test_three_forms_match_the_definition(ks, H, W):
    q, k, v, rel, shift, deform = random_case(ks, H, W)
    ref = ref_slide(q, k, v, rel, ks, [shift, deform])
    merged_w, merged_b = shift[0] + deform[0], shift[1] + deform[1]
    tol = dict(rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(slide_attention(q, k, v, rel, ks, merged_w, merged_b), ref, **tol)
    torch.testing.assert_close(slide_attention_copies(q, k, v, rel, ks, [shift, deform]), ref,
                               **tol)
    torch.testing.assert_close(slide_attention_unfold(q, k, v, rel, ks, [shift, deform]), ref,
                               **tol)


def kernel_or_skip() -> bool:
    if cpu_kernel('slide_attention') is None:
        pytest.skip('the C++ slide attention kernel could not be built here')
    return True


def qkv_case(ks, B, H, W, nh, d, dtype=torch.float64):
    """qkv (B, H, W, 3, heads, d) and a merged conv (shift + deformed) with its bias."""
    qkv = torch.randn(B, H, W, 3, nh, d, dtype=dtype)
    weight = shift_kernels(d, ks).to(dtype) + torch.randn(d * ks * ks, 1, ks, ks, dtype=dtype) * .3
    bias = torch.randn(d * ks * ks, dtype=dtype) * .3
    rel = torch.randn(nh, ks * ks, dtype=dtype) * .5
    return qkv, weight, bias, rel


def qkv_reference(qkv, weight, bias, rel, ks, scale):
    B, H, W, _, nh, d = qkv.shape
    q, k, v = qkv.permute(3, 0, 4, 5, 1, 2).unbind(0)
    y = slide_attention_unfold(q * scale, k, v, rel, ks, [(weight, bias)])
    return y.reshape(B, nh * d, H, W).permute(0, 2, 3, 1)


@pytest.mark.parametrize('use_kernel', [True, False], ids=['kernel', 'pytorch'])
@pytest.mark.parametrize('ks,B,H,W,nh,d', [(3, 2, 5, 7, 2, 3), (1, 1, 3, 4, 2, 4),
                                           (5, 1, 6, 3, 1, 5), (7, 2, 4, 5, 2, 2),
                                           (3, 1, 9, 1, 3, 8), (3, 1, 4, 5, 2, 32),
                                           (5, 1, 3, 4, 1, 64)])
def test_fused_forms_match_the_reference(use_kernel, ks, B, H, W, nh, d):
    """slide_attention_qkv (the layer's path: C++ kernel, or the recomputing Function) against
    Im2Col in fp64 and fp32, with its gradients against autograd through Im2Col."""
    if use_kernel:
        kernel_or_skip()
    inputs = qkv_case(ks, B, H, W, nh, d)
    params = [t.clone().requires_grad_() for t in inputs]
    out = slide_attention_qkv(*params, ks, 0.7, use_kernel=use_kernel)
    ref_params = [t.clone().requires_grad_() for t in inputs]
    ref = qkv_reference(*ref_params, ks, 0.7)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, params, grad)
    expected = torch.autograd.grad(ref, ref_params, grad)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-9, atol=1e-9)
    single = [t.float() for t in inputs]
    torch.testing.assert_close(slide_attention_qkv(*single, ks, 0.7, use_kernel=use_kernel),
                               qkv_reference(*single, ks, 0.7).contiguous(), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize('use_kernel', [True, False], ids=['kernel', 'pytorch'])
@pytest.mark.parametrize('ks', [1, 3, 5])
def test_fused_forms_gradcheck(use_kernel, ks):
    if use_kernel:
        kernel_or_skip()
    params = [t.requires_grad_() for t in qkv_case(ks, 1, 3, 4, 2, 2)]
    assert torch.autograd.gradcheck(
        lambda *t: slide_attention_qkv(*t, ks, 0.7, use_kernel=use_kernel), params,
        fast_mode=True)


def test_kernel_op_registration():
    """vitext::slide_attention passes PyTorch's custom-op checks (schema, fake tensors,
    autograd registration) and torch.export records it as one op."""
    kernel_or_skip()
    qkv, weight, bias, rel = (t.float().requires_grad_() for t in qkv_case(3, 1, 4, 5, 2, 3))
    torch.library.opcheck(torch.ops.vitext.slide_attention.default,
                          (qkv, weight, bias, rel, 3, 0.5))

    class Wrap(torch.nn.Module):
        def forward(self, qkv, weight, bias, rel):
            return slide_attention_qkv(qkv, weight, bias, rel, 3, 0.5)

    graph = torch.export.export(Wrap(), tuple(t.detach() for t in (qkv, weight, bias, rel)))
    targets = [str(n.target) for n in graph.graph.nodes if n.op == 'call_function']
    assert targets == ['vitext.slide_attention.default']


def test_layer_paths_agree():
    """The layer's fused path, the plain path it takes with attention dropout (here dropout 0
    in training to compare) and the token form it records when traced give the same outputs
    and gradients."""
    layer = SlideAttention(12, 2, kernel_size=3).double()
    with torch.no_grad():
        layer.deform.weight.normal_(std=.3)
    x = torch.randn(2, 5, 6, 12, dtype=torch.float64, requires_grad=True)
    fused = layer(x)
    plain_qkv = layer.qkv(x).view(2, 5, 6, 3, 2, 6)
    q, k, v = plain_qkv.permute(3, 0, 4, 5, 1, 2).unbind(0)
    plain = layer.proj(layer.attend(q, k, v).reshape(2, 12, 5, 6).permute(0, 2, 3, 1))
    torch.testing.assert_close(fused, plain, rtol=1e-10, atol=1e-10)
    g = torch.randn_like(fused)
    params = [x, layer.deform.weight, layer.shift.bias, layer.relative_position_bias_table,
              layer.qkv.weight]
    for a, b in zip(torch.autograd.grad(fused, params, g), torch.autograd.grad(plain, params, g)):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    traced = torch.jit.trace(layer.eval(), x.detach())  # traced: the plain path
    torch.testing.assert_close(traced(x.detach()), layer(x.detach()), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('dtype, tol', [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize('ks, nh, H, W', [(3, 1, 5, 7), (3, 3, 6, 4), (5, 2, 4, 9)])
@pytest.mark.parametrize('form', ['training', 'deploy'])
def test_token_form_matches_the_definition(dtype, tol, ks, nh, H, W, form):
    """The form recorded for export, from (B, H, W, 3, heads, d) tokens, equals the Im2Col
    reference on per-head maps; training form: the reference mixes with the shift and the
    deformed convs separately, the token form takes their sum as the layer passes it."""
    B, d, k2 = 2, 4, ks * ks
    qkv = rand(B, H, W, 3, nh, d)
    rel = rand(nh, k2, scale=0.5)
    shift = (shift_kernels(d, ks).double(), rand(d * k2, scale=0.3))
    deform = (rand(d * k2, 1, ks, ks, scale=0.3), rand(d * k2, scale=0.3))
    merged = (shift[0] + deform[0], shift[1] + deform[1])
    scale = d ** -0.5
    q, k, v = qkv.permute(3, 0, 4, 5, 1, 2).unbind(0)
    ref = slide_attention_unfold(q * scale, k, v, rel, ks,
                                 [shift, deform] if form == 'training' else [merged])
    ref = ref.permute(0, 3, 4, 1, 2).reshape(B, H, W, nh * d)
    got = slide_attention_tokens(*(t.to(dtype) for t in (qkv, *merged, rel)), ks, scale)
    assert got.dtype == dtype and got.shape == (B, H, W, nh * d)
    torch.testing.assert_close(got.double(), ref, rtol=tol, atol=tol)


def test_token_form_attention_dropout():
    """Attention dropout applies in training only (p = 1 drops every weight)."""
    qkv, rel = rand(1, 4, 5, 3, 2, 3), rand(2, 9)
    weight, bias = shift_kernels(3, 3).double(), rand(27)
    assert not slide_attention_tokens(qkv, weight, bias, rel, 3, 1., 1., True).any()
    torch.testing.assert_close(slide_attention_tokens(qkv, weight, bias, rel, 3, 1., 1., False),
                               slide_attention_tokens(qkv, weight, bias, rel, 3, 1.))


def test_plain_shifts_are_local_attention():
    ks = 3
    q, k, v, rel, _, _ = random_case(ks, 4, 6)
    identity = (shift_kernels(3, ks).double(), torch.zeros(3 * ks * ks, dtype=torch.float64))
    ref = ref_slide(q, k, v, rel, ks, [identity])
    torch.testing.assert_close(slide_attention(q, k, v, rel, ks), ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(slide_attention_unfold(q, k, v, rel, ks), ref, rtol=1e-10,
                               atol=1e-10)


def test_shift_kernels_layout():
    w = shift_kernels(2, 3)
    assert w.shape == (18, 1, 3, 3)
    for c in range(2):
        for n in range(9):
            expected = torch.zeros(3, 3)
            expected[n // 3, n % 3] = 1
            assert torch.equal(w[c * 9 + n, 0], expected)


def layer_reference(layer, x):
    """The layer's forward by the definition: qkv split per head, reference attention with the
    two convs summed as separate paths, projection."""
    B, H, W, C = x.shape
    nh, d = layer.num_heads, layer.head_dim
    qkv = layer.qkv(x).view(B, H, W, 3, nh, d).permute(3, 0, 4, 5, 1, 2)
    convs = [(layer.shift.weight, layer.shift.bias), (layer.deform.weight, layer.deform.bias)]
    y = ref_slide(qkv[0] * d ** -0.5, qkv[1], qkv[2], layer.relative_position_bias_table,
                  layer.kernel_size, convs)
    return layer.proj(y.reshape(B, C, H, W).permute(0, 2, 3, 1))


@pytest.mark.parametrize('ks,H,W', [(3, 7, 5), (5, 4, 9)])
def test_layer_train_and_deploy_forms(ks, H, W):
    layer = SlideAttention(24, 3, kernel_size=ks).eval()
    x = torch.randn(2, H, W, 24)
    with torch.no_grad():
        train_out = layer(x)
        wide = copy.deepcopy(layer).double()
        torch.testing.assert_close(wide(x.double()), layer_reference(wide, x.double()),
                                   rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(train_out.double(), layer_reference(wide, x.double()),
                                   rtol=1e-5, atol=1e-5)
        layer.switch_to_deploy()
        assert layer.deploy and layer.shift is None and layer.deform is None
        deploy_out = layer(x)
        layer.switch_to_deploy()  # idempotent
        again = layer(x)
    assert (deploy_out - train_out).abs().max() < 1e-5
    assert torch.equal(deploy_out, again)


def test_channels_first_input():
    layer = SlideAttention(16, 2).eval()
    nchw = copy.deepcopy(layer)
    nchw.channels_last = False
    x = torch.randn(1, 5, 6, 16)
    torch.testing.assert_close(nchw(x.permute(0, 3, 1, 2)), layer(x).permute(0, 3, 1, 2))


def test_state_dicts_of_both_forms_load_into_either_form():
    train = SlideAttention(16, 2).eval()
    with torch.no_grad():
        train.deform.weight.normal_()
        train.shift.bias.normal_()
    deploy = copy.deepcopy(train)
    deploy.switch_to_deploy()
    x = torch.randn(1, 5, 5, 16)
    expected = deploy(x)

    fresh_deploy = SlideAttention(16, 2).eval()
    fresh_deploy.switch_to_deploy()
    fresh_deploy.load_state_dict(train.state_dict())  # training form folded on load
    torch.testing.assert_close(fresh_deploy(x), expected)

    fresh_train = SlideAttention(16, 2).eval()
    fresh_train.load_state_dict(deploy.state_dict())  # switches to deploy form
    assert fresh_train.deploy
    torch.testing.assert_close(fresh_train(x), expected)

    again = SlideAttention(16, 2).eval()
    again.load_state_dict(train.state_dict())
    assert not again.deploy
    torch.testing.assert_close(again(x), train(x))


def test_tampered_shift_weights_are_refused():
    layer = SlideAttention(16, 2)
    state = layer.state_dict()
    state['shift.weight'] = torch.rand_like(state['shift.weight'])
    with pytest.raises(ValueError, match='shift.weight'):
        SlideAttention(16, 2).load_state_dict(state)


def test_gradients_reach_shift_bias_and_deformed_conv_not_shift_weights():
    layer = SlideAttention(16, 2)
    layer(torch.randn(2, 6, 5, 16)).square().sum().backward()
    assert layer.shift.weight.grad is None and not layer.shift.weight.requires_grad
    for param in (layer.shift.bias, layer.deform.weight, layer.deform.bias,
                  layer.relative_position_bias_table, layer.qkv.weight):
        assert param.grad is not None and param.grad.abs().sum() > 0


def test_deformed_conv_has_pytorch_default_init_and_shift_is_one_hot():
    layer = SlideAttention(32, 4)
    assert torch.equal(layer.shift.weight, shift_kernels(8, 3))
    bound = 1 / 3  # kaiming_uniform(a=sqrt(5)) on fan_in = 1 * 3 * 3
    assert layer.deform.weight.abs().max() <= bound and layer.deform.weight.std() > 0.1


def test_bad_arguments():
    with pytest.raises(ValueError, match='odd'):
        SlideAttention(16, 2, kernel_size=4)
    with pytest.raises(ValueError, match='divisible'):
        SlideAttention(15, 2)
