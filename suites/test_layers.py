"""layers: hand-written backward passes of transformer layers (spec: docs/spec/layers.md; reference:
reference/layers.py).

The oracle differentiates the layer's forward pass, written here with torch (softmax, layer_norm,
embedding, cross_entropy, matmuls, and the suites' dense attention, ``orc.dense_attention``), by
torch.autograd in float64 on the very values the candidate sees. Float32 results may be at most twice as
far from it as torch.autograd run in float32 on the same inputs (the same-dtype baseline of
suites/tolerances.py).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st

from fmspec.suites import asserts as ah
from fmspec.suites import oracles as orc
from fmspec.suites import strategies as ss
from fmspec.suites import tolerances as tol

pytestmark = pytest.mark.component("layers")
SOFTMAX, LAYERNORM, EMBEDDING = "layers.softmax_backward", "layers.layernorm_backward", "layers.embedding_backward"
CROSS_ENTROPY, ATTENTION, LORA = "layers.cross_entropy_backward", "layers.attention_backward", "layers.lora_backward"
DTYPES = [pytest.param(torch.float64, id="float64"), pytest.param(torch.float32, id="float32")]


def autograd(forward, inputs: list[torch.Tensor], grad_out: torch.Tensor, wrt: list[int]) -> list[torch.Tensor]:
    """torch.autograd of ``forward(*inputs)`` against ``grad_out``, for the inputs at positions ``wrt``
    (in the inputs' dtype: float64 for the oracle, float32 for the baseline)."""
    leaves = [t.detach().clone().requires_grad_(i in wrt) if t.is_floating_point() else t for i, t in enumerate(inputs)]
    out = forward(*leaves)
    return list(torch.autograd.grad(out, [leaves[i] for i in wrt], grad_outputs=grad_out))


def check_grads(got, forward, inputs: list[torch.Tensor], grad_out: torch.Tensor, wrt: list[int], names: list[str],
                dtype: torch.dtype, n: int, where: str, scales: list[float] | None = None) -> None:
    """Every returned gradient against the float64 oracle, with the same-dtype baseline in float32.

    ``scales[i]`` is the size of the terms gradient i is a sum of (``ah.assert_close(scale=)``); errors are
    relative to it where it exceeds the gradient itself (cancellation).
    """
    __tracebackhide__ = True
    got = list(got) if isinstance(got, (tuple, list)) else [got]
    ah.assert_equal(len(got), len(names), name="number of gradients", where=where)
    oracle = autograd(forward, [t.to(torch.float64) if t.is_floating_point() else t for t in inputs],
                      grad_out.to(torch.float64), wrt)
    baseline = autograd(forward, inputs, grad_out, wrt) if dtype != torch.float64 else [None] * len(wrt)
    for i, (g, o, b, name) in enumerate(zip(got, oracle, baseline, names)):
        ah.assert_tensor(g, tuple(o.shape), dtype, name=name, where=where)
        scale = scales[i] if scales is not None else 0.0
        ah.assert_close(g, o, dtype=dtype, n=n, baseline=b, scale=scale, name=name, where=where)


def term_scales(forward, inputs: list[torch.Tensor], grad_out: torch.Tensor, wrt: list[int]) -> list[float]:
    """For a multilinear forward (matmuls, gathers), autograd at the absolute values of everything is the
    sum of the absolute values of the terms: the scale of each gradient's rounding error."""
    absolute = [t.to(torch.float64).abs() if t.is_floating_point() else t for t in inputs]
    return [g.abs().max().item() if g.numel() else 0.0 for g in autograd(forward, absolute, grad_out.to(torch.float64).abs(), wrt)]


# ------------------------------------------------------------------------------------------- softmax
@st.composite
def softmax_cases(draw):
    shape = tuple(draw(st.lists(ss.sizes(1, 6), min_size=1, max_size=3)))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    return shape, dim, draw(ss.seeds())


@pytest.mark.smoke
@pytest.mark.needs(SOFTMAX)
@pytest.mark.parametrize("dtype", DTYPES)
@given(case=softmax_cases(), scale=st.sampled_from([1.0, 5.0]))
@example(case=((2, 3, 4), 1, 0), scale=5.0)  # a middle dim: the inner product along dim, not along the last one
@example(case=((3, 1), -1, 0), scale=1.0)  # softmax over one element: y = 1, dx = 0
def test_softmax_backward_matches_autograd(candidate, dtype, case, scale):
    """dx for y = softmax(x, dim) equals autograd, along any dim of any shape."""
    shape, dim, seed = case
    x, g = ss.randn(shape, seed, dtype, scale=scale), ss.randn(shape, seed + 1, dtype)
    y = torch.softmax(x, dim)
    where = ah.snippet(SOFTMAX, y, g, dim=dim)
    got = ah.call(candidate.layers.softmax_backward, SOFTMAX, y, g, dim=dim)
    y64, g64 = y.to(torch.float64), g.to(torch.float64)
    scale = (y64 * (g64.abs() + (g64 * y64).abs().sum(dim, keepdim=True))).max().item()  # y ⊙ (g - ⟨g, y⟩)
    check_grads(got, lambda x: torch.softmax(x, dim), [x], g, [0], ["grad_x"], dtype, shape[dim], where, [scale])


@pytest.mark.smoke
@pytest.mark.needs(SOFTMAX)
def test_softmax_backward_worked_example(candidate):
    """y = (1/2, 1/2), g = (1, 0): dx = y ⊙ (g - ⟨g, y⟩) = (1/4, -1/4), exactly."""
    y, g = torch.tensor([[0.5, 0.5]], dtype=torch.float64), torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    got = ah.call(candidate.layers.softmax_backward, SOFTMAX, y, g)
    ah.assert_equal(got, torch.tensor([[0.25, -0.25]], dtype=torch.float64), name="grad_x", where=ah.snippet(SOFTMAX, y, g))


@pytest.mark.needs(SOFTMAX)
@given(case=softmax_cases())
@example(case=((2, 3, 4), 1, 0))  # a middle dim
def test_softmax_backward_sums_to_zero(candidate, case):
    """softmax is invariant to adding a constant along dim, so dx sums to 0 along dim."""
    shape, dim, seed = case
    y, g = torch.softmax(ss.randn(shape, seed), dim), ss.randn(shape, seed + 1)
    got = ah.call(candidate.layers.softmax_backward, SOFTMAX, y, g, dim=dim)
    ah.assert_tensor(got, shape, torch.float64, name="grad_x")
    scale = (y * g.abs()).sum(dim).max()  # the size of the terms that cancel
    sums = got.sum(dim)
    limit = tol.allowed(torch.float64, shape[dim]) * max(scale.item(), 1e-300)
    assert sums.abs().max().item() <= limit, (
        f"grad_x sums to {sums.abs().max().item():.3g} along dim {dim}, expected 0 (allowed {limit:.2g}) "
        f"[{ah.snippet(SOFTMAX, y, g, dim=dim)}]")


# ---------------------------------------------------------------------------------------- layer norm
@st.composite
def rows_and_width(draw, max_width: int = 12):
    lead = tuple(draw(st.lists(ss.sizes(1, 4), min_size=1, max_size=2)))
    return lead, draw(ss.sizes(1, max_width)), draw(ss.seeds())


@pytest.mark.smoke
@pytest.mark.needs(LAYERNORM)
@pytest.mark.parametrize("dtype", DTYPES)
@given(case=rows_and_width(), eps=st.sampled_from([1e-5, 1e-2]))
@example(case=((3,), 1, 0), eps=1e-5)  # one feature: x̂ = 0, dx = 0, the biased variance 0 (an unbiased one divides by 0)
@example(case=((2, 3), 7, 0), eps=1e-2)  # two leading dims: dweight and dbias sum over both
def test_layernorm_backward_matches_autograd(candidate, dtype, case, eps):
    """(dx, dweight, dbias) for layer_norm over the last dim equal autograd (biased variance, eps inside)."""
    lead, d, seed = case
    x = ss.randn((*lead, d), seed, dtype, scale=3.0) + ss.randn((d,), seed + 4, dtype)
    w, b, g = ss.randn((d,), seed + 1, dtype), ss.randn((d,), seed + 2, dtype), ss.randn((*lead, d), seed + 3, dtype)
    where = ah.snippet(LAYERNORM, x, w, b, g, eps=eps)
    got = ah.call(candidate.layers.layernorm_backward, LAYERNORM, x, w, b, g, eps=eps)
    check_grads(got, lambda x, w, b: F.layer_norm(x, (d,), w, b, eps), [x, w, b], g, [0, 1, 2],
                ["grad_x", "grad_weight", "grad_bias"], dtype, d + math.prod(lead), where,
                layernorm_scales(x, w, g, eps))


def layernorm_scales(x, w, g, eps):
    """The size of the terms of dx = (1/σ)(ĝ - mean ĝ - x̂ mean(ĝ x̂)), of dw = Σ g x̂ and of db = Σ g (see
    check_grads); x̂ = (x - μ)/σ itself is a difference of terms of size (|x| + |μ|)/σ."""
    x, w, g = x.to(torch.float64), w.to(torch.float64), g.to(torch.float64)
    mu = x.mean(-1, keepdim=True)
    rstd = 1 / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + eps)
    xhat, ghat = (x.abs() + mu.abs()) * rstd, (g * w).abs()
    dx = rstd * (ghat + ghat.mean(-1, keepdim=True) + xhat * (ghat * xhat).mean(-1, keepdim=True))
    d = x.shape[-1]
    return [dx.max().item(), (g.abs() * xhat).reshape(-1, d).sum(0).max().item(), g.abs().reshape(-1, d).sum(0).max().item()]


@pytest.mark.needs(LAYERNORM)
@given(case=rows_and_width())
@example(case=((2, 3), 1, 0))  # one feature
def test_layernorm_grad_x_sums_to_zero(candidate, case):
    """layer norm is invariant to adding a constant to a row, so each row of dx sums to 0."""
    lead, d, seed = case
    x, w, b, g = ss.randn((*lead, d), seed), ss.randn((d,), seed + 1), ss.randn((d,), seed + 2), ss.randn((*lead, d), seed + 3)
    grad_x = ah.call(candidate.layers.layernorm_backward, LAYERNORM, x, w, b, g)[0]
    ah.assert_tensor(grad_x, (*lead, d), torch.float64, name="grad_x")
    # dx_i = rstd (gw_i - mean(gw) - xhat_i mean(gw xhat)): the row sum of the absolute terms, the size of
    # what cancels; xhat = (x - mean) rstd carries the rounding of x - mean, relative to |x| (a nearly
    # constant row has |x - mean| << |x|), so its magnitude is taken as |xhat| + |x| rstd
    rstd = 1 / torch.sqrt(x.var(-1, unbiased=False) + 1e-5)  # (*lead,)
    xhat = ((x - x.mean(-1, keepdim=True)).abs() + x.abs()) * rstd[..., None]
    gw = (g * w).abs()
    scale = (rstd * (2 * gw.sum(-1) + xhat.sum(-1) * (gw * xhat).mean(-1))).max().item()
    sums = grad_x.sum(-1)
    limit = tol.allowed(torch.float64, d) * scale
    assert sums.abs().max().item() <= limit, (
        f"rows of grad_x sum to {sums.abs().max().item():.3g}, expected 0 (allowed {limit:.2g}) "
        f"[{ah.snippet(LAYERNORM, x, w, b, g)}]")


# ----------------------------------------------------------------------------------------- embedding
@pytest.mark.smoke
@pytest.mark.needs(EMBEDDING)
def test_embedding_backward_worked_example(candidate):
    """ids = [0, 2, 0], V = 3: dW = [g0 + g2, 0, g1] (a repeated token collects both gradients)."""
    ids = torch.tensor([0, 2, 0])
    g = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=torch.float64)
    got = ah.call(candidate.layers.embedding_backward, EMBEDDING, ids, 3, g)
    ah.assert_equal(got, torch.tensor([[6.0, 8.0], [0.0, 0.0], [3.0, 4.0]], dtype=torch.float64), name="grad_W",
                    where=ah.snippet(EMBEDDING, ids, 3, g))


@st.composite
def token_cases(draw):
    lead = tuple(draw(st.lists(ss.sizes(1, 5), min_size=1, max_size=2)))
    vocab = draw(ss.sizes(1, 8))
    return lead, vocab, draw(ss.sizes(1, 6)), draw(ss.seeds())


def _ids(shape, high: int, seed: int) -> torch.Tensor:
    return torch.randint(0, high, shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.needs(EMBEDDING)
@pytest.mark.parametrize("dtype", DTYPES)
@given(case=token_cases())
@example(case=((3, 4), 1, 2, 0))  # one token everywhere: its row collects all 12 positions
@example(case=((1,), 8, 3, 0))  # one position, 8 rows: 7 rows of absent ids, the last ones among them
def test_embedding_backward_matches_autograd(candidate, dtype, case):
    """dW for y = W[ids] equals autograd of torch.nn.functional.embedding (ids of any shape, repeats)."""
    lead, vocab, d, seed = case
    ids, g = _ids(lead, vocab, seed), ss.randn((*lead, d), seed + 1, dtype)
    weight = ss.randn((vocab, d), seed + 2, dtype)
    where = ah.snippet(EMBEDDING, ids, vocab, g)
    got = ah.call(candidate.layers.embedding_backward, EMBEDDING, ids, vocab, g)
    forward = lambda w: F.embedding(ids, w)  # noqa: E731
    check_grads(got, forward, [weight], g, [0], ["grad_W"], dtype, math.prod(lead), where,
                term_scales(forward, [weight], g, [0]))


@pytest.mark.needs(EMBEDDING)
@given(case=token_cases())
@example(case=((3, 4), 1, 2, 0))  # one token everywhere
@example(case=((1,), 8, 3, 0))  # one position, 7 absent rows
def test_embedding_backward_rows_of_absent_ids_are_zero(candidate, case):
    """Rows of tokens that do not occur are exactly 0, and the rows add up to the sum of grad_y."""
    lead, vocab, d, seed = case
    ids, g = _ids(lead, vocab, seed), ss.randn((*lead, d), seed + 1)
    where = ah.snippet(EMBEDDING, ids, vocab, g)
    got = ah.call(candidate.layers.embedding_backward, EMBEDDING, ids, vocab, g)
    ah.assert_tensor(got, (vocab, d), torch.float64, name="grad_W", where=where)
    absent = torch.ones(vocab, dtype=torch.bool)
    absent[ids.reshape(-1)] = False
    ah.assert_equal(got[absent], torch.zeros_like(got[absent]), name="rows of absent ids", where=where)
    # both sides add up every position's row: judged against the size of those terms, not the sums
    terms = g.abs().reshape(-1, d).sum(0).max().item()
    ah.assert_close(got.sum(0), g.reshape(-1, d).sum(0), n=g.numel(), scale=terms, name="sum of rows", where=where)


# ------------------------------------------------------------------------------------- cross-entropy
@pytest.mark.smoke
@pytest.mark.needs(CROSS_ENTROPY)
def test_cross_entropy_backward_worked_example(candidate):
    """Zero logits over C = 4 classes, targets (0, 3): dz = (1/4 - onehot) / 2, exactly."""
    logits, targets = torch.zeros(2, 4, dtype=torch.float64), torch.tensor([0, 3])
    expected = torch.tensor([[-3, 1, 1, 1], [1, 1, 1, -3]], dtype=torch.float64) / 8
    got = ah.call(candidate.layers.cross_entropy_backward, CROSS_ENTROPY, logits, targets)
    ah.assert_equal(got, expected, name="grad_logits", where=ah.snippet(CROSS_ENTROPY, logits, targets))


@st.composite
def logit_cases(draw):
    lead = tuple(draw(st.lists(ss.sizes(1, 5), min_size=1, max_size=2)))
    return lead, draw(ss.sizes(1, 9)), draw(ss.seeds())


@pytest.mark.needs(CROSS_ENTROPY)
@pytest.mark.parametrize("dtype", DTYPES)
@given(case=logit_cases(), scale=st.sampled_from([1.0, 10.0]))
@example(case=((2, 3), 5, 0), scale=100.0)  # logits in the hundreds: exp overflows float32 unless the row max goes first
@example(case=((4,), 1, 0), scale=1.0)  # one class: softmax = onehot = 1, dz = 0
def test_cross_entropy_backward_matches_autograd(candidate, dtype, case, scale):
    """dlogits for the mean cross-entropy equals autograd of torch.nn.functional.cross_entropy (rows (N, C)
    or (B, T, C), flattened to rows)."""
    lead, c, seed = case
    logits, targets = ss.randn((*lead, c), seed, dtype, scale=scale), _ids(lead, c, seed + 1)
    where = ah.snippet(CROSS_ENTROPY, logits, targets)
    got = ah.call(candidate.layers.cross_entropy_backward, CROSS_ENTROPY, logits, targets)
    forward = lambda z: F.cross_entropy(z.reshape(-1, c), targets.reshape(-1))  # noqa: E731
    check_grads(got, forward, [logits], torch.tensor(1.0, dtype=dtype), [0], ["grad_logits"], dtype, c, where,
                [1.0 / targets.numel()])  # softmax and one-hot, both of size 1/N


@pytest.mark.needs(CROSS_ENTROPY)
@given(case=logit_cases())
@example(case=((2, 3), 5, 0))  # (B, T, C) rows: N = 6
def test_cross_entropy_backward_rows_sum_to_zero(candidate, case):
    """Each row of dlogits sums to 0 and lies in [-1/N, 1/N] (softmax minus a one-hot, over N rows)."""
    lead, c, seed = case
    logits, targets = ss.randn((*lead, c), seed, scale=3.0), _ids(lead, c, seed + 1)
    where = ah.snippet(CROSS_ENTROPY, logits, targets)
    got = ah.call(candidate.layers.cross_entropy_backward, CROSS_ENTROPY, logits, targets)
    ah.assert_tensor(got, (*lead, c), torch.float64, name="grad_logits", where=where)
    n = targets.numel()
    limit = tol.allowed(torch.float64, c) / n
    assert got.sum(-1).abs().max().item() <= limit, f"a row sums to {got.sum(-1).abs().max().item():.3g}, expected 0 [{where}]"
    assert got.abs().max().item() <= 1 / n + limit, f"max |grad| = {got.abs().max().item():.6g} > 1/N = {1 / n:.6g} [{where}]"


# ----------------------------------------------------------------------------------------- attention
@st.composite
def attention_cases(draw):
    """x (B, T, d) with d = H · Dh: batch 1 and one head included, odd sizes everywhere."""
    return (draw(ss.sizes(1, 3)), draw(ss.sizes(1, 7)), draw(ss.sizes(1, 3)), draw(ss.sizes(1, 5)),
            draw(st.booleans()), draw(ss.seeds()))


def mhsa(x, w_q, w_k, w_v, w_o, n_heads: int, causal: bool):
    """The oracle's multi-head self-attention: dense attention (``orc.dense_attention``) per head."""
    b, t, d = x.shape
    q, k, v = ((x @ w.T).reshape(b, t, n_heads, d // n_heads).transpose(1, 2) for w in (w_q, w_k, w_v))  # (B, H, T, Dh)
    o = orc.dense_attention(q, k, v, causal=causal)  # (B, H, T, Dh)
    return o.transpose(1, 2).reshape(b, t, d) @ w_o.T  # (B, T, d)


def _attention_inputs(b, t, h, dh, seed, dtype):
    d = h * dh
    x = ss.randn((b, t, d), seed, dtype)
    ws = [ss.randn((d, d), seed + i, dtype, scale=1 / math.sqrt(d)) for i in range(1, 5)]
    return x, ws, ss.randn((b, t, d), seed + 5, dtype)


@pytest.mark.smoke
@pytest.mark.needs(ATTENTION)
@pytest.mark.parametrize("dtype", DTYPES)
@given(case=attention_cases())
@example(case=(2, 5, 3, 2, True, 0))  # several heads of several dims each: head h is rows h·Dh..(h+1)·Dh
@example(case=(1, 1, 1, 3, False, 0))  # one token: P = 1, dW_q = dW_k = 0
def test_attention_backward_matches_autograd(candidate, dtype, case):
    """(dx, dW_q, dW_k, dW_v, dW_o) of multi-head self-attention equal autograd through dense attention,
    causal or not, for batch 1, one head and odd sizes too."""
    b, t, h, dh, causal, seed = case
    x, ws, g = _attention_inputs(b, t, h, dh, seed, dtype)
    where = ah.snippet(ATTENTION, x, *ws, h, g, causal=causal)
    got = ah.call(candidate.layers.attention_backward, ATTENTION, x, *ws, h, g, causal=causal)
    forward = lambda *a: mhsa(*a, h, causal)  # noqa: E731
    inputs = [x, *ws]
    # one scale for all five: the largest of them (T = 1 makes dW_q = dW_k = 0, sums of cancelling terms)
    common = max(o.abs().max().item() for o in autograd(forward, [t.to(torch.float64) for t in inputs],
                                                       g.to(torch.float64), [0, 1, 2, 3, 4]))
    check_grads(got, forward, inputs, g, [0, 1, 2, 3, 4], ["grad_x", "grad_w_q", "grad_w_k", "grad_w_v", "grad_w_o"],
                dtype, b * t + t + 2 * h * dh, where, [common] * 5)


@pytest.mark.needs(ATTENTION)
@given(case=attention_cases(), position=st.integers(0, 6))
@example(case=(2, 6, 2, 2, True, 0), position=0)  # a loss on the first token only: every later dx is 0
def test_attention_causal_gradient_flows_only_to_the_past(candidate, case, position):
    """Causal: y_i depends on x_j for j <= i only, so a loss on position i alone gives dx_j = 0 for j > i."""
    b, t, h, dh, _, seed = case
    x, ws, g = _attention_inputs(b, t, h, dh, seed, torch.float64)
    i = position % t
    g[:, :i] = 0.0
    g[:, i + 1 :] = 0.0
    where = ah.snippet(ATTENTION, x, *ws, h, g, causal=True) + f" with grad_y zero except at position {i}"
    grad_x = ah.call(candidate.layers.attention_backward, ATTENTION, x, *ws, h, g, causal=True)[0]
    ah.assert_tensor(grad_x, tuple(x.shape), torch.float64, name="grad_x", where=where)
    future = grad_x[:, i + 1 :].abs().max().item() if i + 1 < t else 0.0
    limit = tol.allowed(torch.float64, b * t * h * dh) * grad_x.abs().max().item()
    assert future <= limit, f"max |grad_x| after position {i} is {future:.3g}, expected 0 [{where}]"


# ---------------------------------------------------------------------------------------------- LoRA
@st.composite
def lora_cases(draw):
    lead = tuple(draw(st.lists(ss.sizes(1, 4), min_size=1, max_size=2)))
    return (lead, draw(ss.sizes(1, 6)), draw(ss.sizes(1, 6)), draw(ss.sizes(1, 4)),
            draw(st.sampled_from([1.0, 8.0, 16.0])), draw(ss.seeds()))


def lora_forward(x, W, A, B, alpha):
    return x @ W.T + (alpha / A.shape[0]) * (x @ A.T) @ B.T


@pytest.mark.smoke
@pytest.mark.needs(LORA)
@pytest.mark.parametrize("dtype", DTYPES)
@given(case=lora_cases())
@example(case=((1,), 3, 5, 4, 8.0, 0))  # r = 4, alpha = 8: the scale alpha/r = 2 differs from alpha and from 1/r
def test_lora_backward_matches_autograd(candidate, dtype, case):
    """(dx, dA, dB) for y = x Wᵀ + (alpha/r) x Aᵀ Bᵀ equal autograd (W frozen)."""
    lead, fan_in, fan_out, r, alpha, seed = case
    x, W = ss.randn((*lead, fan_in), seed, dtype), ss.randn((fan_out, fan_in), seed + 1, dtype)
    A, B = ss.randn((r, fan_in), seed + 2, dtype), ss.randn((fan_out, r), seed + 3, dtype)
    g = ss.randn((*lead, fan_out), seed + 4, dtype)
    where = ah.snippet(LORA, x, W, A, B, alpha, g)
    got = ah.call(candidate.layers.lora_backward, LORA, x, W, A, B, alpha, g)
    forward = lambda x, W, A, B: lora_forward(x, W, A, B, alpha)  # noqa: E731
    check_grads(got, forward, [x, W, A, B], g, [0, 2, 3], ["grad_x", "grad_A", "grad_B"], dtype,
                math.prod(lead) + fan_in + fan_out + r, where, term_scales(forward, [x, W, A, B], g, [0, 2, 3]))


@pytest.mark.needs(LORA)
@given(case=lora_cases())
@example(case=((2, 3), 4, 3, 3, 1.0, 0))  # r = 3 against 6
def test_lora_duplicated_rank_gives_same_grad_x(candidate, case):
    """Stacking A twice and B twice doubles r and AᵀBᵀ, and alpha/r halves: the layer, hence dx, is unchanged."""
    lead, fan_in, fan_out, r, alpha, seed = case
    x, W = ss.randn((*lead, fan_in), seed), ss.randn((fan_out, fan_in), seed + 1)
    A, B, g = ss.randn((r, fan_in), seed + 2), ss.randn((fan_out, r), seed + 3), ss.randn((*lead, fan_out), seed + 4)
    once = ah.call(candidate.layers.lora_backward, LORA, x, W, A, B, alpha, g)[0]
    twice = ah.call(candidate.layers.lora_backward, LORA, x, W, torch.cat([A, A]), torch.cat([B, B], 1), alpha, g)[0]
    # dx = g W + (alpha/r) g B A may cancel far below its terms: errors are relative to the terms
    terms = term_scales(lambda x, W, A, B: lora_forward(x, W, A, B, alpha), [x, W, A, B], g, [0])[0]
    ah.assert_close(twice, once, n=math.prod(lead) * max(fan_in, fan_out, 2 * r), scale=terms, name="grad_x with rank 2r",
                    where=ah.snippet(LORA, x, W, torch.cat([A, A]), torch.cat([B, B], 1), alpha, g))


@pytest.mark.needs(LORA)
def test_lora_zero_b_gives_zero_grad_a(candidate):
    """At initialization (B = 0): dA = 0 exactly and dx = g W, the base layer's gradient."""
    x, W, A = ss.randn((2, 3, 5), 1), ss.randn((4, 5), 2), ss.randn((2, 5), 3)
    B, g = torch.zeros(4, 2, dtype=torch.float64), ss.randn((2, 3, 4), 4)
    where = ah.snippet(LORA, x, W, A, B, 16.0, g)
    grad_x, grad_a, _ = ah.call(candidate.layers.lora_backward, LORA, x, W, A, B, 16.0, g)
    ah.assert_equal(grad_a, torch.zeros_like(A), name="grad_A", where=where)
    ah.assert_close(grad_x, g @ W, n=4, scale=(g.abs() @ W.abs()).max().item(), name="grad_x", where=where)


# --------------------------------------------------------------------------------------- bad input
BAD_CALLS = [  # (feature, id, the argument the message names, call(layers, x (2, 3, 4), w (4, 4), g (2, 3, 4)))
    (SOFTMAX, "softmax-grad_y-shape", "grad_y",
     lambda L, x, w, g: L.softmax_backward(torch.softmax(x, -1), g[..., :3])),
    (LAYERNORM, "layernorm-weight-shape", "weight", lambda L, x, w, g: L.layernorm_backward(x, w[0, :3], w[1], g)),
    (EMBEDDING, "embedding-id-out-of-range", "ids",
     lambda L, x, w, g: L.embedding_backward(torch.tensor([0, 5]), 3, g[0, :2])),
    (EMBEDDING, "embedding-grad_y-shape", "grad_y", lambda L, x, w, g: L.embedding_backward(torch.tensor([0, 1]), 3, g[0])),
    (CROSS_ENTROPY, "ce-target-out-of-range", "targets",
     lambda L, x, w, g: L.cross_entropy_backward(x[0], torch.tensor([0, 4, 1]))),
    (CROSS_ENTROPY, "ce-targets-shape", "targets", lambda L, x, w, g: L.cross_entropy_backward(x[0], torch.tensor([0, 1]))),
    (ATTENTION, "attention-heads-not-dividing-d", "n_heads", lambda L, x, w, g: L.attention_backward(x, w, w, w, w, 3, g)),
    (ATTENTION, "attention-w_q-shape", "w_q", lambda L, x, w, g: L.attention_backward(x, w[:3], w, w, w, 2, g)),
    (LORA, "lora-B-shape", "B", lambda L, x, w, g: L.lora_backward(x, w, w[:2], w[:, :3], 8.0, g)),
]


@pytest.mark.parametrize("call, argument", [pytest.param(c, a, id=i, marks=pytest.mark.needs(f)) for f, i, a, c in BAD_CALLS])
def test_bad_arguments_raise(candidate, call, argument):
    """Mismatched shapes, ids or targets out of range, heads not dividing d: ValueError naming the argument."""
    with pytest.raises(ValueError, match=rf"\b{argument}\b"):
        call(candidate.layers, ss.randn((2, 3, 4), 0), ss.randn((4, 4), 1), ss.randn((2, 3, 4), 2))
