"""flash: tiled exact attention with O(T·D) memory (spec: docs/spec/flash.md; reference: reference/flash.py).

The oracle is dense attention in float64 (``orc.dense_attention``), computed before the candidate runs.
Low-precision results are judged against the error of plain same-dtype PyTorch attention (at most twice
it, ``suites/tolerances.py``). Block sizes: any positive int on CPU, {16, 32, 64, 128} on CUDA.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fmspec.suites import _attention_helpers as ath
from fmspec.suites import _flash_helpers as fh
from fmspec.suites import asserts as ah
from fmspec.suites import memory as mem
from fmspec.suites import oracles as orc
from fmspec.suites import strategies as ss

pytestmark = pytest.mark.component("flash")
FEATURE = "flash.flash_attention"
FLOAT = [pytest.param(torch.float64, id="float64"), pytest.param(torch.float32, id="float32")]
F64 = [pytest.param(torch.float64, id="float64")]  # where float32 adds nothing the other tests miss
LOW = [pytest.param(torch.float16, id="float16"), pytest.param(torch.bfloat16, id="bfloat16")]
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def blocks_for(device: str) -> st.SearchStrategy[int]:
    return fh.GPU_BLOCKS if device == "cuda" else fh.CPU_BLOCKS


def dims_for(device: str) -> st.SearchStrategy[int]:
    return st.sampled_from([32, 64]) if device == "cuda" else ss.sizes(1, 8)


def call(candidate, q, k, v, **kw):
    """The candidate's flash_attention, checked for in-place changes; returns (out, where)."""
    where = ah.snippet(FEATURE, q, k, v, **kw)
    out = ah.call(candidate.flash.flash_attention, FEATURE, q, k, v, **kw)
    return out, where


def grads(candidate, q, k, v, do, dlse=None, **kw):
    """(out, lse or None, (dq, dk, dv), where) of the candidate for the loss sum(out·do) [+ sum(lse·dlse)]."""
    xs = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    if dlse is not None:
        (o, lse), where = call(candidate, *xs, return_lse=True, **kw)
        loss = (o.to(do.dtype) * do).sum() + (lse.to(dlse.dtype) * dlse).sum()
    else:
        o, where = call(candidate, *xs, **kw)
        lse, loss = None, (o.to(do.dtype) * do).sum()
    return o, lse, torch.autograd.grad(loss, xs), where


# ------------------------------------------------------------------------------------------ worked example
@pytest.mark.smoke
@pytest.mark.needs(FEATURE)
@pytest.mark.parametrize("block_k", [1, 2], ids=lambda b: f"block_k{b}")
def test_worked_example(candidate, block_k):
    """q = [0], keys [0], [0], values [1], [3]: both weights are 1/2, so O = 2 and lse = log 2, block by block
    (block 1: m = 0, l = 1, acc = 1; block 2: l = 2, acc = 4)."""
    q = torch.zeros(1, 1, 1, 1, dtype=torch.float64)
    k = torch.zeros(1, 1, 2, 1, dtype=torch.float64)
    v = torch.tensor([1.0, 3.0], dtype=torch.float64).reshape(1, 1, 2, 1)
    (o, lse), where = call(candidate, q, k, v, scale=1.0, return_lse=True, block_q=1, block_k=block_k)
    ah.assert_close(o, torch.full((1, 1, 1, 1), 2.0, dtype=torch.float64), n=2, where=where)
    ah.assert_close(lse, torch.full((1, 1, 1), math.log(2.0), dtype=torch.float64), dtype=torch.float64, n=2,
                    name="lse", where=where)


# ------------------------------------------------------------------------------------------------ oracle
@pytest.mark.smoke
@pytest.mark.needs(FEATURE)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", FLOAT)
@given(data=st.data(), causal=st.booleans(), seed=ss.seeds())
def test_equals_dense_attention(candidate, device, dtype, data, causal, seed):
    """For any block sizes and T in {1, block-1, block, block+1, 2·block+3}, the output equals softmax(s·QKᵀ)V.
    One draw in three is a revealing tiling (:data:`fh.TILINGS`: a partial last tile at block + 1, one
    position, blocks of 1, query and key blocks of different sizes)."""
    tiling = data.draw(fh.tilings(device), "tiling")
    block_q, block_k, T = tiling["block_q"], tiling["block_k"], tiling["T"]
    D = data.draw(dims_for(device), "D")
    B, H = data.draw(ss.sizes(1, 2), "B"), data.draw(ss.sizes(1, 2), "H")
    scale = data.draw(st.sampled_from([None, None, 0.5, 1.7]), "scale")
    q, k, v = ss.qkv(B, H, T, T, D, seed=seed)
    expected = orc.dense_attention(q, k, v, causal=causal, scale=scale)
    q, k, v = (t.to(dtype=dtype, device=device) for t in (q, k, v))
    out, where = call(candidate, q, k, v, causal=causal, scale=scale, block_q=block_q, block_k=block_k)
    ah.assert_tensor(out, (B, H, T, D), dtype, where=where)
    # an output row mixes rows of V, which may cancel: judged against |V|
    ah.assert_close(out, expected, n=T * D, scale=ath.value_scale(v), where=where)


@pytest.mark.needs(FEATURE)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", F64)
@given(data=st.data(), seed=ss.seeds())
def test_causal_with_tq_ne_tk_is_top_left(candidate, device, dtype, data, seed):
    """Tq != Tk, causal: query i sees keys j <= i (top-left aligned, like torch SDPA), so row 0 is exactly v[0]
    and the whole output equals dense attention under that mask."""
    block = data.draw(blocks_for(device), "block")
    # one draw in two: Tq > Tk (the rows past the last key see every key) or Tq < Tk across a block boundary
    Tq, Tk = data.draw(st.one_of(st.sampled_from([(block + 1, 2), (2, block + 1), (2 * block + 3, block)]),
                                 st.tuples(ss.sizes(1, 3 * block + 2), ss.sizes(1, 3 * block + 2))), "Tq, Tk")
    D = data.draw(dims_for(device), "D")
    q, k, v = ss.qkv(1, 2, Tq, Tk, D, seed=seed)
    expected = orc.dense_attention(q, k, v, causal=True)
    q, k, v = (t.to(dtype=dtype, device=device) for t in (q, k, v))
    out, where = call(candidate, q, k, v, causal=True, block_q=block, block_k=block)
    ah.assert_close(out[:, :, :1], v[:, :, :1].to(torch.float64).cpu(), dtype=dtype, n=D, name="out[row 0]",
                    where=where)
    ah.assert_close(out, expected, n=Tk * D, scale=ath.value_scale(v), where=where)


@pytest.mark.needs(FEATURE)
@pytest.mark.parametrize("device", DEVICES)
@given(data=st.data(), causal=st.booleans(), seed=ss.seeds())
def test_block_size_invariance(candidate, device, data, causal, seed):
    """Two tilings of the same problem agree to rounding (float64 on CPU, float32 on CUDA)."""
    blocks = blocks_for(device)
    b1 = (data.draw(blocks, "block_q1"), data.draw(blocks, "block_k1"))
    b2 = (data.draw(blocks, "block_q2"), data.draw(blocks, "block_k2"))
    T, D = data.draw(ss.sizes(1, 20), "T"), data.draw(dims_for(device), "D")
    dtype = torch.float64 if device == "cpu" else torch.float32
    q, k, v = ss.qkv(2, 1, T, T, D, seed=seed, dtype=dtype, device=device)
    first, where = call(candidate, q, k, v, causal=causal, block_q=b1[0], block_k=b1[1])
    second, _ = call(candidate, q, k, v, causal=causal, block_q=b2[0], block_k=b2[1])
    ah.assert_close(second, first.to(torch.float64), dtype=dtype, n=T * D, scale=ath.value_scale(v),
                    name=f"out with blocks {b2}", where=f"against blocks {b1}: {where}")


@pytest.mark.needs(FEATURE)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", F64)
@given(data=st.data(), causal=st.booleans(), seed=ss.seeds())
def test_lse_is_log_sum_exp(candidate, device, dtype, data, causal, seed):
    """return_lse: lse[b, h, i] = log Σ_j exp(s·q_i·k_j) over visible keys, natural log, float32 or better."""
    block = data.draw(blocks_for(device), "block")
    Tq, Tk = data.draw(fh.lengths(block), "Tq"), data.draw(fh.lengths(block), "Tk")
    D = data.draw(dims_for(device), "D")
    q, k, v = ss.qkv(1, 2, Tq, Tk, D, seed=seed)
    _, expected = orc.dense_attention(q, k, v, causal=causal, return_lse=True)
    q, k, v = (t.to(dtype=dtype, device=device) for t in (q, k, v))
    (out, lse), where = call(candidate, q, k, v, causal=causal, return_lse=True, block_q=block, block_k=block)
    ah.assert_tensor(lse, (1, 2, Tq), name="lse", where=where)
    assert lse.dtype in (torch.float32, torch.float64), f"lse.dtype={lse.dtype}, expected float32 or float64 [{where}]"
    ah.assert_close(lse, expected, dtype=dtype, n=Tk * D, scale=fh.lse_term_scale(q, k), name="lse", where=where)


@pytest.mark.needs(FEATURE)
@pytest.mark.parametrize("dtype", FLOAT)
@pytest.mark.parametrize("late", [False, True], ids=["largest-early", "largest-late"])
def test_large_logits_do_not_overflow(candidate, dtype, late):
    """Logits of ±1e4 anywhere, the largest in the first or the last key block: the running max keeps exp() finite."""
    T, block, D = 11, 4, 3
    gen = torch.Generator().manual_seed(7)
    q = torch.zeros(1, 1, T, D, dtype=torch.float64)
    q[..., 0] = 100.0
    q[:, :, ::2, 0] = -100.0
    k = torch.zeros(1, 1, T, D, dtype=torch.float64)
    k[..., 0] = (torch.rand(T, generator=gen, dtype=torch.float64) * 200 - 100).round()  # logits up to ±1e4
    k[:, :, -1 if late else 0, 0] = 100.0
    v = torch.randn(1, 1, T, D, generator=gen, dtype=torch.float64)
    expected, lse64 = orc.dense_attention(q, k, v, scale=1.0, return_lse=True)
    q, k, v = (t.to(dtype) for t in (q, k, v))
    (out, lse), where = call(candidate, q, k, v, scale=1.0, return_lse=True, block_q=block, block_k=block)
    assert torch.isfinite(out).all() and torch.isfinite(lse).all(), f"non-finite output or lse [{where}]"
    ah.assert_close(out, expected, n=T, scale=ath.value_scale(v), where=where)
    ah.assert_close(lse, lse64, dtype=dtype, n=T, name="lse", where=where)


@pytest.mark.needs(FEATURE)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_rows_without_keys_give_zero_and_minus_inf_lse(candidate, device, causal):
    """Tk = 0: every row is fully masked; the output is 0 (never NaN) and lse is -inf; the gradient of q is 0."""
    dtype = torch.float32
    q = ss.randn((2, 2, 5, 16), 3, dtype, device).requires_grad_()
    k = torch.zeros(2, 2, 0, 16, dtype=dtype, device=device, requires_grad=True)
    v = torch.zeros(2, 2, 0, 16, dtype=dtype, device=device, requires_grad=True)
    (out, lse), where = call(candidate, q, k, v, causal=causal, return_lse=True)
    ah.assert_equal(out.detach().cpu(), torch.zeros(2, 2, 5, 16, dtype=dtype), where=where)
    ah.assert_equal(lse.detach().cpu().to(torch.float64), torch.full((2, 2, 5), -math.inf, dtype=torch.float64),
                    name="lse", where=where)
    (dq,) = torch.autograd.grad(out.sum(), q)
    ah.assert_equal(dq.cpu(), torch.zeros_like(dq).cpu(), name="dq", where=where)


@pytest.mark.needs(FEATURE)
def test_empty_query_gives_empty_output(candidate):
    q = torch.zeros(1, 2, 0, 4, dtype=torch.float64)
    k, v = ss.randn((1, 2, 3, 4), 1), ss.randn((1, 2, 3, 4), 2)
    out, where = call(candidate, q, k, v)
    ah.assert_tensor(out, (1, 2, 0, 4), torch.float64, where=where)


# --------------------------------------------------------------------------------------------- gradients
@pytest.mark.smoke
@pytest.mark.needs(FEATURE)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", F64)
@given(data=st.data(), causal=st.booleans(), with_lse=st.booleans(), seed=ss.seeds())
def test_gradients_match_dense_autograd(candidate, device, dtype, data, causal, with_lse, seed):
    """dQ, dK, dV of sum(O·dO) [+ sum(lse·dlse)] equal torch autograd through dense float64 attention."""
    block_q, block_k = data.draw(blocks_for(device), "block_q"), data.draw(blocks_for(device), "block_k")
    # causal Tq = 1 or Tk = 1: the one visible key makes dQ = 0 exactly, and a relative error against an
    # all-zero oracle is not defined (rounding gives 1e-16 where 0 is exact)
    Tq = data.draw(fh.lengths(block_q).filter(lambda t: t > 1 or not causal), "Tq")
    Tk = data.draw(fh.lengths(block_k).filter(lambda t: t > 1), "Tk")
    D = data.draw(dims_for(device), "D")
    q, k, v = ss.qkv(1, 2, Tq, Tk, D, seed=seed)
    do = ss.randn((1, 2, Tq, D), seed + 3)
    dlse = ss.randn((1, 2, Tq), seed + 4) if with_lse else None
    _, _, expected = fh.oracle_grads(q, k, v, do, dlse, causal)
    terms = fh.gradient_term_scales(q, k, v, do, dlse, causal)  # dQ and dK may cancel to far below their terms
    q, k, v = (t.to(dtype=dtype, device=device) for t in (q, k, v))
    _, _, got, where = grads(candidate, q, k, v, do.to(dtype=dtype, device=device),
                                None if dlse is None else dlse.to(device=device), causal=causal, block_q=block_q,
                                block_k=block_k)
    for name, g, e in zip(("dq", "dk", "dv"), got, expected):
        ah.assert_close(g, e, dtype=dtype, n=max(Tq, Tk) * D, scale=terms[name], name=name, where=where)


@pytest.mark.needs(FEATURE)
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_backward_saves_no_score_matrix(candidate, causal):
    """Autograd keeps O(T·D) for the backward: no saved tensor has Tq·Tk elements, and the total saved is a
    few times (Tq + Tk)·D (seed 003: recompute the T×T matrix, never store it)."""
    Tq, Tk, D = 96, 80, 4
    q, k, v = (t.requires_grad_() for t in ss.qkv(1, 1, Tq, Tk, D, seed=5, dtype=torch.float32))
    with mem.saved_tensors() as saved:
        out, where = call(candidate, q, k, v, causal=causal, block_q=16, block_k=16)
    shapes = saved.shapes  # every tensor saved, whatever its dtype, repeats included
    sizes = [math.prod(s) for s in shapes]
    assert shapes, f"nothing was saved for the backward: is the output differentiable? [{where}]"
    assert max(sizes) < Tq * Tk, f"a saved tensor has {max(sizes)} >= Tq·Tk = {Tq * Tk} elements: {shapes} [{where}]"
    assert sum(sizes) <= 8 * (Tq + Tk) * D, f"saved {sum(sizes)} elements in all, more than 8·(Tq+Tk)·D [{where}]"
    out.sum().backward()


@pytest.mark.gpu
@pytest.mark.needs(FEATURE)
@pytest.mark.parametrize("device", ["cuda"])
@pytest.mark.parametrize("dtype", [pytest.param(torch.bfloat16, id="bfloat16")])
def test_gpu_memory_grows_linearly_in_t(candidate, device, dtype):
    """Allocator peak of forward+backward at T and 4T: about 4x (linear), far from the 16x of a T×T matrix."""
    from fmspec import gpu_bench as gb

    peaks = {}
    for T in (2048, 8192):
        q, k, v = (t.requires_grad_() for t in ss.qkv(1, 4, T, T, 64, seed=9, dtype=dtype, device=device))
        do = torch.randn_like(q)

        def step():
            candidate.flash.flash_attention(q, k, v, causal=True).backward(do)

        step()
        peaks[T] = gb.allocator_peak(step)
    ratio = peaks[8192] / max(peaks[2048], 1)
    assert ratio <= 6.0, f"allocator peak grew {ratio:.1f}x from T=2048 to 8192 (linear: 4x): {peaks}"


# ------------------------------------------------------------------------------------------ low precision
@pytest.mark.needs(FEATURE)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", LOW)
@given(data=st.data(), causal=st.booleans(), seed=ss.seeds())
def test_low_precision_error_within_twice_baseline(candidate, device, dtype, data, causal, seed):
    """In float16/bfloat16, output and gradients are at most twice as far from float64 as plain PyTorch
    attention computed in the same dtype (or within the low-precision rounding floor of tolerances.py).

    Sizes are a kernel's, not the smallest tiling cases: with T and D of a few elements every sum is short
    and a kernel that accumulates in float16 is as accurate as one that accumulates in float32."""
    block = data.draw(fh.GPU_BLOCKS if device == "cuda" else st.sampled_from([16, 32]), "block")
    T = data.draw(st.sampled_from([block - 1, 2 * block + 3, 4 * block + 5]), "T")
    D = data.draw(st.sampled_from([32, 64]), "D")
    q, k, v = ss.qkv(1, 2, T, T, D, seed=seed)
    do = ss.randn((1, 2, T, D), seed + 3)
    o64, _, g64 = fh.oracle_grads(q, k, v, do, causal=causal)
    low = [t.to(dtype=dtype, device=device) for t in (q, k, v, do)]
    ob, _, gb_ = fh.oracle_grads(*low, causal=causal)  # the same-dtype baseline
    out, _, got, where = grads(candidate, *low, causal=causal, block_q=block, block_k=block)
    # judged against the results' own size, not their terms': the baseline sums the same terms in the same
    # dtype, so its error carries any cancellation into the bar (twice it); the terms' size would lift the
    # low-precision floor above the error of a kernel that accumulates in float16
    ah.assert_close(out, o64, dtype=dtype, n=T * D, baseline=ob, where=where)
    for name, g, e, b in zip(("dq", "dk", "dv"), got, g64, gb_):
        # dS = P ∘ (dO·V − rowsum(dO ∘ O)) chains a reduction over D into one over T
        ah.assert_close(g, e, dtype=dtype, n=T * D, baseline=b, name=name, where=where)


@pytest.mark.needs(FEATURE)
@pytest.mark.parametrize("device", ["cpu"])
@pytest.mark.parametrize("dtype", [pytest.param(torch.float16, id="float16")])
@pytest.mark.parametrize("case", [(20, 17, True)], ids=["20x17-causal"])
def test_kernels_match_dense_under_triton_interpreter(candidate, device, dtype, case, monkeypatch):
    """With TRITON_INTERPRET=1, candidates that route CPU float16 to Triton kernels run them in Triton's
    interpreter (the reference does): forward, lse and gradients against float64, at small sizes, no GPU."""
    Tq, Tk, causal = case
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    q, k, v = ss.qkv(1, 1, Tq, Tk, 16, seed=11)
    do, dlse = ss.randn((1, 1, Tq, 16), 12), ss.randn((1, 1, Tq), 13)
    o64, lse64, g64 = fh.oracle_grads(q, k, v, do, dlse, causal)
    low = [t.to(dtype) for t in (q, k, v, do)]
    ob, _, gb_ = fh.oracle_grads(*low, dlse=dlse.to(dtype), causal=causal)
    out, lse, got, where = grads(candidate, *low[:3], low[3], dlse, causal=causal, block_q=16, block_k=16)
    # out and the gradients against their own size: the baseline's error carries any cancellation (see the test
    # above); lse, without a baseline, against its terms
    ah.assert_close(out, o64, dtype=dtype, n=Tk, baseline=ob, where=where)
    ah.assert_close(lse, lse64, dtype=dtype, n=16, scale=fh.lse_term_scale(q, k), name="lse", where=where)
    for name, g, e, b in zip(("dq", "dk", "dv"), got, g64, gb_):
        ah.assert_close(g, e, dtype=dtype, n=Tk, baseline=b, name=name, where=where)


# ------------------------------------------------------------------------------------------- input forms
@pytest.mark.needs(FEATURE)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_non_contiguous_inputs_work(candidate, device, causal):
    """q, k, v as (B, T, H, D) tensors transposed to (B, H, T, D) views give the same result as contiguous ones."""
    dtype = torch.float32
    raw = [ss.randn((2, 37, 2, 16), s, dtype, device) for s in (1, 2, 3)]  # (B, T, H, D)
    views = [t.transpose(1, 2) for t in raw]  # (B, H, T, D), non-contiguous
    expected = orc.dense_attention(*(t.double() for t in views), causal=causal)
    out, where = call(candidate, *views, causal=causal)
    ah.assert_close(out, expected.cpu(), dtype=dtype, n=37 * 16, scale=ath.value_scale(raw[2]), where=where)


@pytest.mark.needs(FEATURE)
def test_same_answer_when_called_twice(candidate):
    q, k, v = ss.qkv(1, 2, 9, 9, 4, seed=21)
    first, where = call(candidate, q, k, v, causal=True, block_q=4, block_k=4)
    second, _ = call(candidate, q, k, v, causal=True, block_q=4, block_k=4)
    ah.assert_equal(second, first, name="second call", where=where)


BAD = {  # case -> (the arguments from good q, k, v, the argument the error must name)
    "q-3-dims": (lambda q, k, v: dict(q=q[0], k=k, v=v), "q"),
    "k-other-D": (lambda q, k, v: dict(q=q, k=k[..., :3], v=v[..., :3]), "k"),
    "k-other-H": (lambda q, k, v: dict(q=q, k=k[:, :1], v=v[:, :1]), "k"),
    "v-other-T": (lambda q, k, v: dict(q=q, k=k, v=v[:, :, :2]), "v"),
    "int-dtype": (lambda q, k, v: dict(q=q.long(), k=k.long(), v=v.long()), "q"),
    "mixed-dtype": (lambda q, k, v: dict(q=q, k=k.float(), v=v), "k"),
    "block_q-0": (lambda q, k, v: dict(q=q, k=k, v=v, block_q=0), "block_q"),
    "block_k-negative": (lambda q, k, v: dict(q=q, k=k, v=v, block_k=-4), "block_k"),
}


@pytest.mark.needs(FEATURE)
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_arguments_raise(candidate, case):
    """Malformed inputs raise ValueError or TypeError (never a wrong answer or a crash deep inside) whose
    message names the argument."""
    q, k, v = ss.qkv(1, 2, 5, 5, 4, seed=1)
    make, argument = BAD[case]
    with pytest.raises((ValueError, TypeError), match=rf"\b{argument}\b"):
        candidate.flash.flash_attention(**make(q, k, v))


@pytest.mark.gpu
@pytest.mark.needs(FEATURE)
@pytest.mark.parametrize("device", ["cuda"])
@pytest.mark.parametrize("dtype", LOW)
def test_unsupported_head_dim_is_a_clear_error_or_right(candidate, device, dtype):
    """A head dim a kernel may not support (D = 72): either a right answer, or a ValueError/TypeError that
    names the head dim."""
    q, k, v = ss.qkv(1, 2, 50, 50, 72, seed=4)
    expected = orc.dense_attention(q, k, v)
    low = [t.to(dtype=dtype, device=device) for t in (q, k, v)]
    baseline = orc.dense_attention(*low)
    try:
        out, where = call(candidate, *low)
    except (ValueError, TypeError) as exc:
        text = str(exc).lower()
        assert "head" in text or "d=" in text or " d " in text, f"the error does not name the head dim: {exc}"
        return
    ah.assert_close(out, expected, dtype=dtype, n=50, baseline=baseline, where=where)
