"""quant: absmax and zero-point int8, NF4 with double quantization, LLM.int8 (spec: docs/spec/quant.md;
reference: reference/quant.py).

Codes are compared exactly with the formula evaluated in float64 (``round(127 / absmax · x)``), except
where the float64 value sits within the candidate dtype's rounding of a .5 tie: there either neighbour
is right. At an exact tie (127 / absmax and the product exact in every precision) half to even is
required. Error bounds are half a quantization step plus the rounding floor of ``suites/tolerances.py``.

Inputs are drawn on the CPU (the oracle sees them in float64), the candidate runs on each device of
``DEVICES``, and its outputs come back to the CPU to be judged. The ``..._under_triton_interpreter``
tests set ``TRITON_INTERPRET=1``, under which a candidate may route CPU calls to Triton kernels run in
Triton's interpreter (the reference does): they must give the same bits as without it.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from fmspec.suites import asserts as ah
from fmspec.suites import strategies as ss
from fmspec.suites import tolerances as tol

pytestmark = pytest.mark.component("quant")
AQ, AD = "quant.absmax_quantize", "quant.absmax_dequantize"
ZQ, ZD = "quant.zeropoint_quantize", "quant.zeropoint_dequantize"
NQ, ND = "quant.nf4_quantize", "quant.nf4_dequantize"
MM = "quant.int8_matmul"

DTYPES = [pytest.param(torch.float32, id="float32"), pytest.param(torch.float64, id="float64")]
KERNEL_DTYPES = [pytest.param(torch.float32, id="float32"), pytest.param(torch.float16, id="float16"),
                 pytest.param(torch.bfloat16, id="bfloat16")]
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]
# QLoRA appendix E: the 16 NF4 levels (float32 values as published)
NF4_LEVELS = torch.tensor([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0], dtype=torch.float64)

shapes = st.lists(ss.sizes(1, 10), min_size=1, max_size=3).map(tuple)
magnitudes = st.sampled_from([1e-3, 1.0, 300.0])
modes = st.sampled_from(["tensor", "dim", "block"])


# Representative cases run first on every property (hypothesis's explicit examples): a 3 x 7 tensor per
# tensor, per row (dim=-1) and in blocks of 5 (a short last block). They catch most bugs at once, with a
# readable input and no shrinking; the generated examples search beyond them.
LAYOUT_CASES = (("block", 4), ("dim", 1), ("tensor", 0))


def layout_examples(**fixed):
    def decorate(test):
        for mode, pick in LAYOUT_CASES:
            test = example(shape=(3, 7), seed=0, mode=mode, pick=pick, **fixed)(test)
        return test
    return decorate


# --------------------------------------------------------------------------------------------- oracles
def layout(mode: str, shape: tuple[int, ...], pick: int) -> dict:
    """Keyword arguments for one quantization layout: per tensor, over one dim, or flat blocks."""
    if mode == "dim":
        return {"dim": pick % len(shape) - (len(shape) if pick % 2 else 0)}  # positive and negative dims
    if mode == "block":
        return {"block_size": 1 + pick % 24}
    return {}


def groups(shape: tuple[int, ...], block_size: int | None = None, dim: int | None = None) -> torch.Tensor:
    """For each element, the id of the group sharing its constant (shaped like x)."""
    flat = torch.arange(math.prod(shape)).reshape(shape)
    if block_size is not None:
        return flat // block_size  # flat row-major blocks
    if dim is not None:
        return flat.amin(dim=dim, keepdim=True).expand(shape)  # every slice along dim
    return torch.zeros(shape, dtype=torch.long)


def group_reduce(values: torch.Tensor, ids: torch.Tensor, how: str) -> torch.Tensor:
    """``how`` ("amax" or "amin") of ``values`` over each group, given back per element."""
    out = torch.zeros(int(ids.max()) + 1, dtype=values.dtype)
    out = out.scatter_reduce(0, ids.reshape(-1), values.reshape(-1), how, include_self=False)
    return out[ids]


def absmax_values(x64: torch.Tensor, **kw) -> tuple[torch.Tensor, torch.Tensor]:
    """(127 · x / absmax unrounded, absmax), per element, in float64; 0 where the group is all zero."""
    absmax = group_reduce(x64.abs(), groups(tuple(x64.shape), **kw), "amax")
    return torch.where(absmax > 0, 127 * x64 / torch.where(absmax > 0, absmax, 1.0), 0.0), absmax


def scale_per_element(scale: torch.Tensor, shape: tuple[int, ...], where: str, **kw) -> torch.Tensor:
    """The candidate's constant of each element, after checking the shape of ``scale``."""
    if kw.get("block_size") is not None:
        n_blocks = -(-math.prod(shape) // kw["block_size"])
        ah.assert_tensor(scale, (n_blocks,), name="scale", where=where)
        return scale.to(torch.float64)[groups(shape, **kw)]
    if kw.get("dim") is not None:
        expected = list(shape)
        expected[kw["dim"]] = 1
        ah.assert_tensor(scale, tuple(expected), name="scale", where=where)
        return scale.to(torch.float64).expand(shape)
    assert isinstance(scale, torch.Tensor) and scale.numel() == 1, \
        f"scale: expected one number, got {ah.describe(scale)} [{where}]"
    return scale.to(torch.float64).reshape(()).expand(shape)


def quantize(candidate, x: torch.Tensor, device: str = "cpu", **kw):
    """The candidate's (q, scale) of ``x`` computed on ``device``, brought back to the CPU; and the call."""
    x = x.to(device)
    where = ah.snippet(AQ, x, **kw)
    out = ah.call(candidate.quant.absmax_quantize, AQ, x, **kw)
    assert isinstance(out, tuple) and len(out) == 2, f"expected (q, scale), got {ah.describe(out)} [{where}]"
    q, scale = out
    ah.assert_tensor(q, tuple(x.shape), torch.int8, name="q", where=where)
    return q.cpu(), scale.cpu(), where


def dequantize(candidate, q: torch.Tensor, scale: torch.Tensor, device: str = "cpu", **kw) -> torch.Tensor:
    """The candidate's absmax_dequantize on ``device``, brought back to the CPU."""
    return ah.call(candidate.quant.absmax_dequantize, AD, q.to(device), scale.to(device), **kw).cpu()


# ------------------------------------------------------------------------------------ worked examples
@pytest.mark.smoke
@pytest.mark.needs(AQ, AD)
@pytest.mark.parametrize("device", DEVICES)
def test_absmax_worked_example(candidate, device):
    """x = [1, -2.5, 0.3, 4]: c = 127/4 = 31.75, c·x = [31.75, -79.375, 9.525, 127] -> q = [32, -79, 10, 127]."""
    x = torch.tensor([1.0, -2.5, 0.3, 4.0], dtype=torch.float64)
    q, scale, where = quantize(candidate, x, device)
    ah.assert_equal(q, torch.tensor([32, -79, 10, 127], dtype=torch.int8), name="q", where=where)
    ah.assert_close(scale.reshape(()), torch.tensor(4.0 / 127, dtype=torch.float64), name="scale", where=where)
    deq = dequantize(candidate, q, scale, device)
    expected = torch.tensor([32, -79, 10, 127], dtype=torch.float64) * 4 / 127
    ah.assert_close(deq, expected, name="dequant", where=ah.snippet(AD, q, scale))


@pytest.mark.smoke
@pytest.mark.needs(AQ, AD)
@pytest.mark.parametrize("device", DEVICES)
def test_blockwise_worked_example_outlier(candidate, device):
    """The lecture's "outliers cause issues -> chunks with their own c": per tensor, 100 leaves the small
    values at 0; with block_size=3 the block [0.1, 0.2, -0.3] gets c = 127/0.3 -> [42, 85, -127]."""
    x = torch.tensor([0.1, 0.2, -0.3, 100.0], dtype=torch.float64)
    q, _, where = quantize(candidate, x, device)
    ah.assert_equal(q, torch.tensor([0, 0, 0, 127], dtype=torch.int8), name="q per tensor", where=where)
    q, scale, where = quantize(candidate, x, device, block_size=3)
    ah.assert_equal(q, torch.tensor([42, 85, -127, 127], dtype=torch.int8), name="q blockwise", where=where)
    ah.assert_close(scale, torch.tensor([0.3 / 127, 100 / 127], dtype=torch.float64), name="scale", where=where)
    deq = dequantize(candidate, q, scale, device, block_size=3)
    expected = torch.tensor([42 * 0.3 / 127, 85 * 0.3 / 127, -0.3, 100.0], dtype=torch.float64)
    ah.assert_close(deq, expected, name="dequant", where=ah.snippet(AD, q, scale, block_size=3))


@pytest.mark.smoke
@pytest.mark.needs(ZQ, ZD)
def test_zeropoint_worked_example(candidate):
    """x = [-1, 0, 0.25, 2]: scale = 3/255 = 1/85, zero_point = -128 + 85 = -43, q = [-128, -43, -22, 127]."""
    x = torch.tensor([-1.0, 0.0, 0.25, 2.0], dtype=torch.float64)
    where = ah.snippet(ZQ, x)
    q, scale, zp = ah.call(candidate.quant.zeropoint_quantize, ZQ, x)
    ah.assert_equal(q, torch.tensor([-128, -43, -22, 127], dtype=torch.int8), name="q", where=where)
    assert int(zp) == -43, f"zero_point = {int(zp)}, expected -43 [{where}]"
    ah.assert_close(scale.reshape(()), torch.tensor(1 / 85, dtype=torch.float64), name="scale", where=where)
    deq = ah.call(candidate.quant.zeropoint_dequantize, ZD, q, scale, zp)
    ah.assert_close(deq, torch.tensor([-1.0, 0.0, 21 / 85, 2.0], dtype=torch.float64), name="dequant",
                    where=ah.snippet(ZD, q, scale, zp))


# --------------------------------------------------------------------------------- absmax properties
@pytest.mark.smoke
@pytest.mark.needs(AQ)
@pytest.mark.parametrize("dtype", DTYPES)
@given(shape=shapes, seed=ss.seeds(), mode=modes, pick=st.integers(0, 100), magnitude=magnitudes)
@layout_examples(magnitude=1.0)
def test_codes_are_int8_within_127(candidate, dtype, shape, seed, mode, pick, magnitude):
    x = ss.randn(shape, seed, dtype, scale=magnitude)
    q, _, where = quantize(candidate, x, **layout(mode, shape, pick))
    assert int(q.to(torch.int16).abs().max()) <= 127, f"max |q| = {int(q.to(torch.int16).abs().max())} > 127 [{where}]"


@pytest.mark.needs(AQ)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@given(shape=shapes, seed=ss.seeds(), mode=modes, pick=st.integers(0, 100), magnitude=magnitudes)
@layout_examples(magnitude=1.0)
def test_codes_match_absmax_formula(candidate, device, dtype, shape, seed, mode, pick, magnitude):
    """Oracle: q = round(127 / absmax · x) with the absmax of the element's tensor, row or block."""
    kw = layout(mode, shape, pick)
    x = ss.randn(shape, seed, dtype, scale=magnitude)
    v, _ = absmax_values(x.to(torch.float64), **kw)
    q, _, where = quantize(candidate, x, device, **kw)
    ah.assert_rounded(q, v, dtype, where=where)


@pytest.mark.needs(AQ)
@pytest.mark.parametrize("dtype", DTYPES)
@given(shape=shapes, seed=ss.seeds(), mode=modes, pick=st.integers(0, 100), magnitude=magnitudes)
@layout_examples(magnitude=1.0)
def test_scale_is_absmax_over_127(candidate, dtype, shape, seed, mode, pick, magnitude):
    kw = layout(mode, shape, pick)
    x = ss.randn(shape, seed, dtype, scale=magnitude)
    _, absmax = absmax_values(x.to(torch.float64), **kw)
    _, scale, where = quantize(candidate, x, **kw)
    ah.assert_close(scale_per_element(scale, shape, where, **kw), absmax / 127, dtype=dtype, name="scale", where=where)


@pytest.mark.needs(AQ)
@given(shape=shapes, seed=ss.seeds(), mode=modes, pick=st.integers(0, 100))
@layout_examples()
def test_largest_entry_maps_to_127(candidate, shape, seed, mode, pick):
    """In every non-zero group, the entry of largest magnitude gets the code ±127: the whole range is used."""
    kw = layout(mode, shape, pick)
    x = ss.randn(shape, seed)
    q, _, where = quantize(candidate, x, **kw)
    top = group_reduce(q.to(torch.float64).abs(), groups(shape, **kw), "amax")
    ah.assert_equal(top, torch.full(shape, 127.0, dtype=torch.float64), name="max |q| per group", where=where)


@pytest.mark.needs(AQ, AD)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@given(shape=shapes, seed=ss.seeds(), mode=modes, pick=st.integers(0, 100), magnitude=magnitudes)
@layout_examples(magnitude=1.0)
def test_error_at_most_half_step(candidate, device, dtype, shape, seed, mode, pick, magnitude):
    """|x - dequant(quant(x))| <= absmax / 254 (half a step) in each group, plus the dtype's rounding."""
    kw = layout(mode, shape, pick)
    x = ss.randn(shape, seed, dtype, scale=magnitude)
    x64 = x.to(torch.float64)
    _, absmax = absmax_values(x64, **kw)
    q, scale, where = quantize(candidate, x, device, **kw)
    deq = dequantize(candidate, q, scale, device, **kw)
    ah.assert_tensor(deq, shape, dtype, name="dequant", where=where)
    bound = absmax / 254 + tol.rounding_floor(dtype) * absmax
    ah.assert_within((deq.to(torch.float64) - x64).abs(), bound, name="dequant error", where=where)


@pytest.mark.needs(AQ, AD)
@pytest.mark.parametrize("dtype", DTYPES)
@given(shape=shapes, seed=ss.seeds(), mode=modes, pick=st.integers(0, 100))
@layout_examples()
def test_dequantize_is_codes_times_scale(candidate, dtype, shape, seed, mode, pick):
    kw = layout(mode, shape, pick)
    x = ss.randn(shape, seed, dtype)
    q, scale, where = quantize(candidate, x, **kw)
    expected = q.to(torch.float64) * scale_per_element(scale, shape, where, **kw)
    deq = ah.call(candidate.quant.absmax_dequantize, AD, q, scale, **kw)
    ah.assert_close(deq, expected, dtype=dtype, name="dequant", where=ah.snippet(AD, q, scale, **kw))


@pytest.mark.needs(AQ, AD)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@given(shape=shapes, seed=ss.seeds(), mode=modes, pick=st.integers(0, 100),
       zeroed=st.sets(st.integers(0, 63), min_size=1, max_size=4))
@layout_examples(zeroed={1})
@example(shape=(2, 3), seed=0, mode="tensor", pick=0, zeroed={0})  # an all-zero tensor
@example(shape=(3, 7), seed=0, mode="block", pick=4, zeroed={4})  # the partial last block (5 | 21) all zero
def test_zero_groups_give_zeros(candidate, device, dtype, shape, seed, mode, pick, zeroed):
    """A group (tensor, row or block) of zeros: codes 0, scale 0, dequantized zeros; never NaN."""
    kw = layout(mode, shape, pick)
    ids = groups(shape, **kw)
    x = ss.randn(shape, seed, dtype)
    mask = torch.isin(ids, torch.tensor(sorted(g % (int(ids.max()) + 1) for g in zeroed)))
    x[mask] = 0.0
    q, scale, where = quantize(candidate, x, device, **kw)
    deq = dequantize(candidate, q, scale, device, **kw)
    per = scale_per_element(scale, shape, where, **kw)
    assert bool(torch.isfinite(per).all()) and bool(torch.isfinite(deq).all()), f"NaN or inf in scale or dequant [{where}]"
    ah.assert_equal(q[mask], torch.zeros_like(q[mask]), name="q of zero groups", where=where)
    ah.assert_equal(deq[mask], torch.zeros_like(deq[mask]), name="dequant of zero groups", where=where)


@pytest.mark.needs(AQ)
@pytest.mark.parametrize("mode", ["dim", "block"])
@given(shape=shapes, seed=ss.seeds(), pick=st.integers(0, 100), where_at=st.integers(0, 10**6))
@example(shape=(3, 7), seed=0, pick=3, where_at=9)
@example(shape=(3, 7), seed=0, pick=4, where_at=20)  # block_size 5: the outlier alone in the partial last block
def test_outlier_changes_only_its_group(candidate, mode, shape, seed, pick, where_at):
    """Make one entry 1000 times the largest: codes and scales of every other row or block are unchanged."""
    kw = layout(mode, shape, pick)
    x = ss.randn(shape, seed)
    i = where_at % x.numel()  # the outlier's position
    y = x.clone()
    y.view(-1)[i] = 1000 * float(x.abs().max())
    q_x, s_x, _ = quantize(candidate, x, **kw)
    q_y, s_y, where = quantize(candidate, y, **kw)
    ids = groups(shape, **kw)
    other = ids != ids.reshape(-1)[i]
    ah.assert_equal(q_y[other], q_x[other], name="q outside the outlier's group", where=where)
    ah.assert_equal(scale_per_element(s_y, shape, where, **kw)[other], scale_per_element(s_x, shape, where, **kw)[other],
                    name="scale outside the outlier's group", where=where)


@pytest.mark.needs(AQ, AD)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@given(n_full=st.integers(0, 4), block_size=st.integers(2, 16), seed=ss.seeds(), tail_at=st.integers(0, 100))
@example(n_full=3, block_size=8, seed=0, tail_at=2)
@example(n_full=0, block_size=16, seed=0, tail_at=0)  # a single element: one short block
def test_last_partial_block_has_its_own_scale(candidate, device, dtype, n_full, block_size, seed, tail_at):
    """n = k·b + t (0 < t < b): ceil(n/b) scales; the short tail, 1000 times smaller, keeps its precision."""
    tail = 1 + tail_at % (block_size - 1)
    x = ss.randn((n_full * block_size + tail,), seed, dtype)
    x[n_full * block_size:] *= 1e-3
    x64 = x.to(torch.float64)
    q, scale, where = quantize(candidate, x, device, block_size=block_size)
    ah.assert_tensor(scale, (n_full + 1,), name="scale", where=where)
    tail64 = x64[n_full * block_size:]
    ah.assert_close(scale[-1:], tail64.abs().max().reshape(1) / 127, dtype=dtype, name="scale of the last block",
                    where=where)
    v, absmax = absmax_values(x64, block_size=block_size)
    ah.assert_rounded(q[n_full * block_size:], v[n_full * block_size:], dtype, where=where)
    deq = dequantize(candidate, q, scale, device, block_size=block_size)
    bound = (absmax / 254 + tol.rounding_floor(dtype) * absmax)[n_full * block_size:]
    ah.assert_within((deq.to(torch.float64)[n_full * block_size:] - tail64).abs(), bound, name="tail error",
                     where=where)


@pytest.mark.needs(AQ)
@pytest.mark.parametrize("dtype", DTYPES)
@given(shape=shapes, seed=ss.seeds(), mode=modes, pick=st.integers(0, 100), k=st.integers(-8, 8),
       sign=st.sampled_from([1, -1]))
@layout_examples(k=3, sign=-1)
def test_scale_equivariance(candidate, dtype, shape, seed, mode, pick, k, sign):
    """quant(s·x) = (sign(s)·q, |s|·scale) for s = ±2^k (exact in binary floating point)."""
    kw = layout(mode, shape, pick)
    x = ss.randn(shape, seed, dtype)
    q, scale, _ = quantize(candidate, x, **kw)
    q_s, scale_s, where = quantize(candidate, x * (sign * 2.0**k), **kw)
    ah.assert_equal(q_s, q * sign, name=f"q of {sign}·2^{k}·x", where=where)
    ah.assert_close(scale_per_element(scale_s, shape, where, **kw), scale_per_element(scale, shape, where, **kw) * 2.0**k,
                    dtype=dtype, name=f"scale of {sign}·2^{k}·x", where=where)


@pytest.mark.needs(AQ)
def test_same_answer_when_called_twice(candidate):
    x = ss.randn((6, 5), 3)
    q1, s1, _ = quantize(candidate, x, block_size=4)
    q2, s2, where = quantize(candidate, x, block_size=4)
    ah.assert_equal(q2, q1, name="second q", where=where)
    ah.assert_equal(s2, s1, name="second scale", where=where)


# Exact ties: with absmax = 127 (c = 1) or 63.5 (c = 2), c and c·x are exact in every precision, so
# x = k + 0.5 (or (k + 0.5) / 2) is a true .5 tie and half to even decides: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2.
TIE_ROW = [127.0, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5]  # per row of 8 (c = 1)
TIE_CODES = [127, 0, 2, 2, 0, -2, -2, 126]
HALF_ROW = [63.5, 0.25, 0.75, 1.25, -0.25, -0.75, -1.25, 3.25]  # c = 2: ties at 0.5, 1.5, 2.5, 6.5
HALF_CODES = [127, 0, 2, 2, 0, -2, -2, 6]


def tie_input(rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, 8) alternating rows of TIE_ROW and HALF_ROW (float64, exact in bfloat16), and their codes."""
    x = torch.tensor([TIE_ROW, HALF_ROW], dtype=torch.float64).repeat(-(-rows // 2), 1)[:rows]
    q = torch.tensor([TIE_CODES, HALF_CODES], dtype=torch.int8).repeat(-(-rows // 2), 1)[:rows]
    return x, q


def check_exact_ties(candidate, x: torch.Tensor, codes: torch.Tensor, device: str) -> None:
    """Codes of the layouts whose groups are one tie row each (rows, blocks of 8), and per tensor for
    the c = 1 rows alone."""
    for kw in ({"dim": -1}, {"block_size": 8}):
        q, _, where = quantize(candidate, x, device, **kw)
        ah.assert_equal(q, codes, name="codes of exact ties", where=where)
    ones = x[0::2]  # the rows with absmax 127: per tensor, c = 1 too
    q, _, where = quantize(candidate, ones, device)
    ah.assert_equal(q, codes[0::2], name="codes of exact ties (per tensor)", where=where)


@pytest.mark.needs(AQ)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_exact_ties_round_half_to_even(candidate, device, dtype):
    """torch.round's rule where it is unambiguous: exact .5 ties go to the even neighbour, per row, per
    block and per tensor. On CUDA the input is large (2^17 rows of 8), where fast paths take over."""
    x, codes = tie_input(2**17 if device == "cuda" else 6)
    check_exact_ties(candidate, x.to(dtype), codes, device)


@pytest.mark.needs(AQ)
@pytest.mark.parametrize("device", ["cpu"])
@pytest.mark.parametrize("dtype", KERNEL_DTYPES)
def test_kernels_round_exact_ties_to_even_under_triton_interpreter(candidate, device, dtype, monkeypatch):
    """The same exact ties with TRITON_INTERPRET=1, in float32, float16 and bfloat16 (every tie is exact
    there): candidates that route CPU calls to Triton kernels run them in Triton's interpreter."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    x, codes = tie_input(6)
    check_exact_ties(candidate, x.to(dtype), codes, device)


# Kernel-sized cases: ((shape, layout), dtype), each case in one dtype. Under the interpreter a quantize call
# costs ~0.25 s whatever the size (a program is a whole tile of 8192 elements), so each structural case runs
# once, not once per dtype: every dtype still meets a partial last block, an odd or non-power-of-two block
# size and the three kernels (quantize, dequantize, NF4 dequantize), and each dtype's exact ties are
# test_kernels_round_exact_ties_to_even_under_triton_interpreter's.
KERNEL_CASES = [
    (((1000,), {"block_size": 64}), torch.float32),  # a power of two, partial last block; NF4 in whole bytes
    (((7,), {"block_size": 1}), torch.float32),  # every element its own block (zeros: blocks 0 to 4)
    (((23,), {"block_size": 5}), torch.float16),  # odd, partial last block, the first block all zero
    (((5, 37), {"dim": -1}), torch.float16),  # rows of 37: one row a block
    (((4, 64), {"block_size": 256}), torch.float16),  # one block longer than the input
    (((3, 100), {"block_size": 24}), torch.bfloat16),  # even, not a power of two, partial last block
    (((2, 300), {"block_size": 100}), torch.bfloat16),  # whole blocks only, not a power of two
]


def kernel_case_id(case, dtype) -> str:
    shape, kw = case
    return f"{'x'.join(map(str, shape))}-{'-'.join(f'{k}{v}' for k, v in kw.items())}-{str(dtype).removeprefix('torch.')}"


def quant_outputs(candidate, x: torch.Tensor, kw: dict) -> dict[str, torch.Tensor]:
    """Everything the candidate computes from x: codes, scales, the dequantized codes, and (blockwise)
    the NF4 round trip."""
    q, scale, _ = quantize(candidate, x, **kw)
    out = {"q": q, "scale": scale, "dequant": dequantize(candidate, q, scale, **kw)}
    if "block_size" in kw:
        out["nf4 dequant"] = nf4_round_trip(candidate, x, block_size=kw["block_size"])[0]
    return out


@pytest.mark.needs(AQ, AD, NQ, ND)
@pytest.mark.capability("nf4")
@pytest.mark.parametrize("device", ["cpu"])
@pytest.mark.parametrize("case, dtype", [pytest.param(c, dt, id=kernel_case_id(c, dt)) for c, dt in KERNEL_CASES])
def test_kernels_match_eager_under_triton_interpreter(candidate, device, dtype, case, monkeypatch):
    """With TRITON_INTERPRET=1 the candidate gives the same bits as without it (the reference: its Triton
    kernels in the interpreter against its readable code): block sizes that are not powers of two, partial
    last blocks and all-zero blocks, spread over float32, float16 and bfloat16 (see KERNEL_CASES)."""
    shape, kw = case
    x = ss.randn(shape, 7, dtype)
    x.view(-1)[: min(x.numel(), 5)] = 0.0  # the first block all zero for block sizes <= 5, partly zero else
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    eager = quant_outputs(candidate, x, kw)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    kernels = quant_outputs(candidate, x, kw)
    where = ah.snippet(AQ, x, **kw)
    for name, expected in eager.items():
        ah.assert_equal(kernels[name], expected, name=f"{name} with TRITON_INTERPRET=1", where=where)
    ah.assert_nontrivial(eager["q"].to(torch.float64), name="codes")


PIECE = 4096  # elements of one piece: a small input


@pytest.mark.needs(AQ, AD, NQ, ND)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["block", "row", "nf4"])
def test_large_input_equals_its_pieces(candidate, device, mode):
    """Each block (or row) is quantized on its own, so a large input (3·2^16 + 40 elements, a partial last
    block) gives, bit for bit, what its block-aligned pieces of 4096 elements give: fast paths that take
    over for large inputs compute the same numbers as the plain code for small ones."""
    if mode == "row":
        x = ss.randn((4900, 40), 5, torch.float32)  # 196 000 elements in rows of 40
        x[0] = 0.0  # an all-zero row
        kw, pieces = {"dim": -1}, x.split(PIECE // 40)  # 102 rows a piece
    else:
        x = ss.randn((3 * 2**16 + 40,), 5, torch.float32)
        x[:64] = 0.0  # an all-zero block
        kw, pieces = {"block_size": 64}, x.split(PIECE)
    where = ah.snippet(NQ if mode == "nf4" else AQ, x, **kw)
    if mode == "nf4":
        whole = nf4_round_trip(candidate, x, device, **kw)[0]
        parts = torch.cat([nf4_round_trip(candidate, p, device, **kw)[0] for p in pieces])
        ah.assert_equal(whole, parts, name="nf4 dequant of the whole vs its pieces", where=where)
        return
    q, scale, _ = quantize(candidate, x, device, **kw)
    deq = dequantize(candidate, q, scale, device, **kw)
    got = [quantize(candidate, p, device, **kw) for p in pieces]
    ah.assert_equal(q, torch.cat([g[0] for g in got]), name="q of the whole vs its pieces", where=where)
    ah.assert_equal(scale, torch.cat([g[1] for g in got]), name="scale of the whole vs its pieces", where=where)
    parts = torch.cat([dequantize(candidate, g[0], g[1], device, **kw) for g in got])
    ah.assert_equal(deq, parts, name="dequant of the whole vs its pieces", where=where)


# a bad value raises ValueError, a value of the wrong type TypeError or ValueError (docs/contract.md);
# either way the message names the argument
BAD_VALUE, BAD_TYPE = ValueError, (TypeError, ValueError)


@pytest.mark.needs(AQ)
@pytest.mark.parametrize("kw, error, argument", [
    ({"block_size": 0}, BAD_VALUE, "block_size"), ({"block_size": -4}, BAD_VALUE, "block_size"),
    ({"block_size": 2.5}, BAD_TYPE, "block_size"), ({"block_size": 4, "dim": 0}, BAD_VALUE, "block_size"),
    ({"dim": 5}, BAD_VALUE, "dim")],
    ids=["block-0", "block-negative", "block-float", "block-and-dim", "dim-out-of-range"])
def test_bad_arguments_raise_value_error(candidate, kw, error, argument):
    with pytest.raises(error, match=rf"\b{argument}\b"):
        candidate.quant.absmax_quantize(ss.randn((4, 4), 0), **kw)


@pytest.mark.needs(AQ)
def test_integer_input_raises_type_error(candidate):
    with pytest.raises(TypeError, match=r"\bx\b"):
        candidate.quant.absmax_quantize(torch.arange(8))


# ----------------------------------------------------------------------------------------- zero-point
def zp_quantize(candidate, x: torch.Tensor, **kw):
    where = ah.snippet(ZQ, x, **kw)
    out = ah.call(candidate.quant.zeropoint_quantize, ZQ, x, **kw)
    assert isinstance(out, tuple) and len(out) == 3, f"expected (q, scale, zero_point), got {ah.describe(out)} [{where}]"
    q, scale, zp = out
    ah.assert_tensor(q, tuple(x.shape), torch.int8, name="q", where=where)
    assert isinstance(zp, torch.Tensor) and not zp.is_floating_point(), \
        f"zero_point must be an integer tensor, got {ah.describe(zp)} [{where}]"
    return q, scale, zp, where


def zp_range(x64: torch.Tensor, **kw) -> tuple[torch.Tensor, torch.Tensor]:
    """min(x, 0) and max(x, 0) of each element's group."""
    ids = groups(tuple(x64.shape), **kw)
    return group_reduce(x64, ids, "amin").clamp(max=0), group_reduce(x64, ids, "amax").clamp(min=0)


zp_layouts = st.one_of(st.just({}), st.integers(1, 24).map(lambda b: {"block_size": b}))


@pytest.mark.needs(ZQ)
@pytest.mark.parametrize("dtype", DTYPES)
@given(shape=shapes, seed=ss.seeds(), kw=zp_layouts, magnitude=magnitudes, shift=st.sampled_from([0.0, 2.0, -3.0]))
@example(shape=(3, 7), seed=0, kw={"block_size": 5}, magnitude=1.0, shift=2.0)
@example(shape=(3, 7), seed=0, kw={}, magnitude=1.0, shift=0.0)
def test_zeropoint_scale_is_range_over_255(candidate, dtype, shape, seed, kw, magnitude, shift):
    """scale = (max(x, 0) - min(x, 0)) / 255 per tensor or block; zero_point is an int in [-128, 127]."""
    x = ss.randn(shape, seed, dtype, scale=magnitude) + shift * magnitude
    lo, hi = zp_range(x.to(torch.float64), **kw)
    q, scale, zp, where = zp_quantize(candidate, x, **kw)
    ah.assert_close(scale_per_element(scale, shape, where, **kw), (hi - lo) / 255, dtype=dtype, name="scale", where=where)
    assert -128 <= int(zp.min()) and int(zp.max()) <= 127, f"zero_point outside [-128, 127]: {zp.tolist()} [{where}]"


@pytest.mark.needs(ZQ)
@pytest.mark.parametrize("dtype", DTYPES)
@given(shape=shapes, seed=ss.seeds(), kw=zp_layouts, shift=st.sampled_from([0.0, 2.0, -3.0]))
@example(shape=(3, 7), seed=0, kw={"block_size": 5}, shift=2.0)
@example(shape=(3, 7), seed=0, kw={}, shift=0.0)
def test_zeropoint_codes_span_int8_range(candidate, dtype, shape, seed, kw, shift):
    """min(x, 0) gets code -128 and max(x, 0) code 127: all 256 codes are in use."""
    x = ss.randn(shape, seed, dtype) + shift
    q, _, zp, where = zp_quantize(candidate, x, **kw)
    ids = groups(shape, **kw)
    q64, x64 = q.to(torch.float64), x.to(torch.float64)
    lo, hi = zp_range(x64, **kw)
    zp_el = zp.to(torch.float64).reshape(-1)[ids] if kw else zp.to(torch.float64).expand(shape)
    q_lo = torch.where(x64 == lo, q64, torch.where(lo == 0, zp_el, torch.inf))  # code of the group minimum
    q_hi = torch.where(x64 == hi, q64, torch.where(hi == 0, zp_el, -torch.inf))
    nonzero = hi > lo
    ah.assert_equal(group_reduce(q_lo, ids, "amin")[nonzero], torch.full_like(q64[nonzero], -128),
                    name="code of min(x, 0)", where=where)
    ah.assert_equal(group_reduce(q_hi, ids, "amax")[nonzero], torch.full_like(q64[nonzero], 127),
                    name="code of max(x, 0)", where=where)


@pytest.mark.needs(ZQ)
@pytest.mark.parametrize("dtype", DTYPES)
@given(shape=shapes, seed=ss.seeds(), kw=zp_layouts, shift=st.sampled_from([0.0, 2.0, -3.0]))
@example(shape=(3, 7), seed=0, kw={"block_size": 5}, shift=2.0)
@example(shape=(3, 7), seed=0, kw={}, shift=0.0)
def test_zeropoint_codes_match_formula(candidate, dtype, shape, seed, kw, shift):
    """Oracle: q = clamp(round(x / scale) + zero_point, -128, 127) with the candidate's (checked) scale."""
    x = ss.randn(shape, seed, dtype) + shift
    lo, hi = zp_range(x.to(torch.float64), **kw)
    step = (hi - lo) / 255
    q, _, zp, where = zp_quantize(candidate, x, **kw)
    zp_el = zp.to(torch.float64).reshape(-1)[groups(shape, **kw)] if kw else zp.to(torch.float64).expand(shape)
    ah.assert_rounded(zp_el, -128 - lo / torch.where(step > 0, step, 1.0), dtype, lo=-128, hi=127,
                      where=where + " (zero_point)")
    v = x.to(torch.float64) / torch.where(step > 0, step, 1.0) + zp_el
    ah.assert_rounded(q, v, dtype, lo=-128, hi=127, where=where)


@pytest.mark.needs(ZQ, ZD)
@pytest.mark.parametrize("dtype", DTYPES)
@given(shape=shapes, seed=ss.seeds(), kw=zp_layouts, magnitude=magnitudes, shift=st.sampled_from([0.0, 2.0, -3.0]))
@example(shape=(3, 7), seed=0, kw={"block_size": 5}, magnitude=1.0, shift=2.0)
@example(shape=(3, 7), seed=0, kw={}, magnitude=1.0, shift=0.0)
def test_zeropoint_error_at_most_half_step(candidate, dtype, shape, seed, kw, magnitude, shift):
    x = ss.randn(shape, seed, dtype, scale=magnitude) + shift * magnitude
    x64 = x.to(torch.float64)
    lo, hi = zp_range(x64, **kw)
    q, scale, zp, where = zp_quantize(candidate, x, **kw)
    deq = ah.call(candidate.quant.zeropoint_dequantize, ZD, q, scale, zp, **kw)
    ah.assert_tensor(deq, shape, dtype, name="dequant", where=where)
    bound = (hi - lo) / 510 + tol.rounding_floor(dtype) * (hi - lo)
    ah.assert_within((deq.to(torch.float64) - x64).abs(), bound, name="dequant error", where=where)


@pytest.mark.needs(ZQ, ZD)
@pytest.mark.parametrize("dtype", DTYPES)
@given(shape=shapes, seed=ss.seeds(), kw=zp_layouts, shift=st.sampled_from([0.0, 2.0, -3.0]),
       zeroed=st.sets(st.integers(0, 10**6), min_size=1, max_size=4))
@example(shape=(3, 7), seed=0, kw={"block_size": 5}, shift=0.0, zeroed={3, 11})
@example(shape=(3, 7), seed=0, kw={}, shift=0.0, zeroed={3, 11})
@example(shape=(3, 7), seed=0, kw={"block_size": 5}, shift=2.0, zeroed={0, 1, 2, 3, 4})  # an all-zero block
@example(shape=(2, 2), seed=0, kw={}, shift=0.0, zeroed={0, 1, 2, 3})  # an all-zero tensor
def test_zeropoint_zero_is_exact(candidate, dtype, shape, seed, kw, shift, zeroed):
    """An exact 0 quantizes to zero_point and dequantizes to exactly 0 (padding, ReLU outputs stay zero);
    an all-zero block or tensor gives zeros, never NaN."""
    x = ss.randn(shape, seed, dtype) + shift
    zeros = {z % x.numel() for z in zeroed}
    x.view(-1)[sorted(zeros)] = 0.0
    q, scale, zp, where = zp_quantize(candidate, x, **kw)
    deq = ah.call(candidate.quant.zeropoint_dequantize, ZD, q, scale, zp, **kw)
    assert bool(torch.isfinite(deq).all()), f"NaN or inf in dequant [{where}]"
    at = torch.tensor(sorted(zeros))
    ah.assert_equal(deq.reshape(-1)[at], torch.zeros(len(at), dtype=dtype), name="dequant of zeros", where=where)


# -------------------------------------------------------------------------------------- NF4, tier two
def nf4_oracle(x64: torch.Tensor, block_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x / absmax, the index of its nearest level, absmax), per element, float64."""
    ids = groups(tuple(x64.shape), block_size=block_size)
    absmax = group_reduce(x64.abs(), ids, "amax")
    normed = torch.where(absmax > 0, x64 / torch.where(absmax > 0, absmax, 1.0), 0.0)
    return normed, (normed[..., None] - NF4_LEVELS).abs().argmin(-1), absmax


def nf4_round_trip(candidate, x: torch.Tensor, device: str = "cpu", **kw) -> tuple[torch.Tensor, str]:
    """dequant(quant(x)) by the candidate on ``device``, brought back to the CPU; and the call."""
    x = x.to(device)
    where = f"{ah.snippet(ND, ah.snippet(NQ, x, **kw))}"
    state = ah.call(candidate.quant.nf4_quantize, NQ, x, **kw)
    deq = ah.call(candidate.quant.nf4_dequantize, ND, state)
    ah.assert_tensor(deq, tuple(x.shape), x.dtype, name="dequant", where=where)
    return deq.cpu(), where


nf4_blocks = st.sampled_from([16, 32, 64])


@pytest.mark.smoke
@pytest.mark.needs(NQ, ND)
@pytest.mark.capability("nf4")
@pytest.mark.parametrize("dtype", DTYPES)
@given(n_blocks=st.integers(1, 4), seed=ss.seeds(), magnitude=magnitudes)
@example(n_blocks=2, seed=0, magnitude=1.0)
def test_nf4_levels_reproduced_exactly(candidate, dtype, n_blocks, seed, magnitude):
    """The worked numbers: blocks holding the 16 published levels times a constant come back unchanged."""
    gen = torch.Generator().manual_seed(seed)
    rows = [NF4_LEVELS[torch.randperm(16, generator=gen)] * magnitude * (1 + b) for b in range(n_blocks)]
    x = torch.cat(rows).to(dtype)  # each block of 16 holds every level once, absmax = magnitude·(1+b)
    deq, where = nf4_round_trip(candidate, x, block_size=16)
    ah.assert_close(deq, x.to(torch.float64), dtype=dtype, name="dequant", where=where)


@pytest.mark.needs(NQ, ND)
@pytest.mark.capability("nf4")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@given(shape=shapes, seed=ss.seeds(), block_size=nf4_blocks, magnitude=magnitudes)
@example(shape=(3, 40), seed=0, block_size=16, magnitude=1.0)
def test_nf4_rounds_to_nearest_level(candidate, device, dtype, shape, seed, block_size, magnitude):
    """Oracle: each value becomes absmax(block) times the NF4 level nearest to x / absmax (ties: either)."""
    x = ss.randn(shape, seed, dtype, scale=magnitude)
    normed, idx, absmax = nf4_oracle(x.to(torch.float64), block_size)
    deq, where = nf4_round_trip(candidate, x, device, block_size=block_size)
    got = deq.to(torch.float64)
    # accept the neighbour level too where x / absmax is within the dtype's rounding of a midpoint
    slack = tol.rounding_floor(dtype)
    lower, upper = NF4_LEVELS[(idx - 1).clamp(min=0)], NF4_LEVELS[(idx + 1).clamp(max=15)]
    near_lower = (normed - (lower + NF4_LEVELS[idx]) / 2).abs() <= slack
    near_upper = (normed - (upper + NF4_LEVELS[idx]) / 2).abs() <= slack
    expected = NF4_LEVELS[idx] * absmax
    limit = tol.rounding_floor(dtype) * absmax
    ok = ((got - expected).abs() <= limit) | (near_lower & ((got - lower * absmax).abs() <= limit)) \
        | (near_upper & ((got - upper * absmax).abs() <= limit))
    ah.assert_within(torch.where(ok, 0.0, 1.0), torch.zeros_like(got), name="not the nearest level", where=where)


@pytest.mark.needs(NQ, ND)
@pytest.mark.capability("nf4")
@given(shape=shapes, seed=ss.seeds(), block_size=nf4_blocks, double_quant=st.booleans())
@example(shape=(3, 40), seed=0, block_size=16, double_quant=True)
def test_nf4_zero_blocks_give_zeros(candidate, shape, seed, block_size, double_quant):
    x = ss.randn(shape, seed)
    x.view(-1)[: min(x.numel(), block_size)] = 0.0  # the first block
    deq, where = nf4_round_trip(candidate, x, block_size=block_size, double_quant=double_quant)
    assert bool(torch.isfinite(deq).all()), f"NaN or inf in dequant [{where}]"
    zero = x == 0
    ah.assert_equal(deq[zero], torch.zeros_like(deq[zero]), name="dequant of the zero block", where=where)


@pytest.mark.needs(NQ, ND)
@pytest.mark.capability("nf4")
@pytest.mark.parametrize("device", DEVICES)
@given(n=st.integers(1, 1200), seed=ss.seeds(), block_size=nf4_blocks, magnitude=magnitudes)
@example(n=1000, seed=0, block_size=16, magnitude=1.0)
def test_nf4_double_quant_matches_formula(candidate, device, n, seed, block_size, magnitude):
    """Oracle: block constants c -> m = mean(c), c' = absmax-int8 of (c - m) in blocks of 256, + m;
    every value is its level times c'. Up to ~19 blocks of 64 (or 75 of 16), so several groups of 256
    appear only with the small block sizes."""
    x = ss.randn((n,), seed, scale=magnitude) * (1 + torch.arange(n, dtype=torch.float64) / n)  # varied constants
    _, idx, absmax = nf4_oracle(x, block_size)
    c = absmax[::block_size]  # (n_blocks,)
    m = c.mean()
    v, a2 = absmax_values(c - m, block_size=256)
    c2 = torch.round(v) * a2 / 127 + m  # (n_blocks,) the doubly quantized constants
    expected = NF4_LEVELS[idx] * c2[torch.arange(n) // block_size]
    deq, where = nf4_round_trip(candidate, x, device, block_size=block_size, double_quant=True)
    # c2 = q2·s2 + m is a sum: its roundings are relative to its terms, m and max|c - m|
    terms = float(m.abs() + (c - m).abs().max())
    ah.assert_close(deq, expected, n=block_size, scale=terms, name="dequant with double quantization", where=where)


@pytest.mark.needs(NQ)
@pytest.mark.capability("nf4")
@pytest.mark.parametrize("block_size, error", [(0, BAD_VALUE), (-64, BAD_VALUE), (1.5, BAD_TYPE)],
                         ids=["zero", "negative", "float"])
def test_nf4_bad_block_size_raises(candidate, block_size, error):
    with pytest.raises(error, match=r"\bblock_size\b"):
        candidate.quant.nf4_quantize(ss.randn((64,), 0), block_size=block_size)


# -------------------------------------------------------------------------------- LLM.int8, tier three
def int8_oracle(x64: torch.Tensor, w64: torch.Tensor, threshold: float) -> torch.Tensor:
    """The paper's decomposition in float64: outlier columns exact, the rest vector-wise int8."""
    x2 = x64.reshape(-1, x64.shape[-1])
    out = (x2.abs() >= threshold).any(0)
    y = x2[:, out] @ w64[:, out].T
    xr, wr = x2[:, ~out], w64[:, ~out]
    if xr.shape[1]:
        vx, ax = absmax_values(xr, dim=1)
        vw, aw = absmax_values(wr, dim=1)
        y = y + (torch.round(vx) @ torch.round(vw).T) * (ax[:, :1] / 127) * (aw[:, :1] / 127).T
    return y.reshape(*x64.shape[:-1], w64.shape[0])


def outlier_input(shape: tuple[int, ...], seed: int, dtype: torch.dtype, n_outliers: int) -> torch.Tensor:
    """Normal activations plus a few feature columns with one value of magnitude 20-60 (as in LLMs)."""
    x = ss.randn(shape, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    cols = torch.randperm(shape[-1], generator=gen)[:n_outliers]
    rows = x.reshape(-1, shape[-1])
    for c in cols.tolist():
        r = int(torch.randint(rows.shape[0], (1,), generator=gen))
        rows[r, c] = float(torch.empty(1, dtype=torch.float64).uniform_(20, 60, generator=gen)) * (-1) ** c
    return rows.reshape(shape).to(dtype)


mm_shapes = st.tuples(ss.sizes(1, 3), ss.sizes(1, 6), ss.sizes(2, 24), ss.sizes(1, 8))  # B, T, in, out


def int8_matmul(candidate, x: torch.Tensor, w: torch.Tensor, device: str = "cpu", **kw):
    """The candidate's int8_matmul on ``device``, brought back to the CPU; and the call."""
    x, w = x.to(device), w.to(device)
    where = ah.snippet(MM, x, w, **kw)
    return ah.call(candidate.quant.int8_matmul, MM, x, w, **kw).cpu(), where


def dot_terms(x64: torch.Tensor, w64: torch.Tensor) -> float:
    """The size of the terms of x @ w.T (its entries are sums that may cancel): max of |x| @ |w|.T."""
    return float((x64.abs().reshape(-1, x64.shape[-1]) @ w64.abs().T).max())


# sizes of the CUDA path's padding (torch._int_mm takes M > 16, K and N multiples of 8): 17 rows, K 20, N 12
@pytest.mark.needs(MM)
@pytest.mark.capability("int8_matmul")
@pytest.mark.parametrize("device", DEVICES)
@given(dims=mm_shapes, seed=ss.seeds(), n_outliers=st.integers(0, 3))
@example(dims=(2, 3, 16, 5), seed=0, n_outliers=2)
@example(dims=(1, 17, 20, 12), seed=0, n_outliers=1)
@example(dims=(3, 8, 24, 8), seed=1, n_outliers=0)  # no outlier: all through int8
def test_int8_matmul_matches_llm_int8_formula(candidate, device, dims, seed, n_outliers):
    """Oracle: x[:, O] @ w[:, O].T + (qx @ qw.T)·sx·sw.T, O = columns holding any |x| >= 6."""
    B, T, K, N = dims
    x = outlier_input((B, T, K), seed, torch.float64, n_outliers)
    w = ss.randn((N, K), seed + 2)
    expected = int8_oracle(x, w, 6.0)
    y, where = int8_matmul(candidate, x, w, device)
    ah.assert_close(y, expected, n=K, scale=dot_terms(x, w), name="int8_matmul", where=where)


@pytest.mark.needs(MM)
@pytest.mark.capability("int8_matmul")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@given(dims=mm_shapes, seed=ss.seeds())
@example(dims=(2, 3, 16, 5), seed=0)
def test_int8_matmul_all_outliers_is_exact_matmul(candidate, device, dtype, dims, seed):
    """With a threshold below every |x|, every column is an outlier: plain x @ w.T."""
    B, T, K, N = dims
    x, w = ss.randn((B, T, K), seed, dtype), ss.randn((N, K), seed + 2, dtype)
    expected = x.to(torch.float64) @ w.to(torch.float64).T
    baseline = x @ w.T
    y, where = int8_matmul(candidate, x, w, device, threshold=1e-30)
    ah.assert_close(y, expected, dtype=dtype, n=K, baseline=baseline, scale=dot_terms(x.double(), w.double()),
                    name="int8_matmul", where=where)


@pytest.mark.needs(MM)
@pytest.mark.capability("int8_matmul")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@given(dims=mm_shapes, seed=ss.seeds(), n_outliers=st.integers(1, 3))
@example(dims=(2, 3, 16, 5), seed=0, n_outliers=2)
@example(dims=(1, 17, 20, 12), seed=0, n_outliers=1)
def test_int8_matmul_error_bounded_despite_outliers(candidate, device, dtype, dims, seed, n_outliers):
    """|y - x @ w.T| <= sum_k over regular columns of (hx |w_k| + |x_k| hw + hx hw), hx and hw half the
    int8 steps of the row of x and of w without the outlier columns: outliers cost no precision."""
    B, T, K, N = dims
    x = outlier_input((B, T, K), seed, dtype, n_outliers)
    w = ss.randn((N, K), seed + 2, dtype)
    x64, w64 = x.to(torch.float64).reshape(-1, K), w.to(torch.float64)
    reg = ~(x64.abs() >= 6.0).any(0)
    xr, wr = x64[:, reg].abs(), w64[:, reg].abs()
    hx = torch.cat([xr, torch.zeros(len(xr), 1)], 1).amax(1, keepdim=True) / 254  # (M, 1)
    hw = torch.cat([wr, torch.zeros(len(wr), 1)], 1).amax(1, keepdim=True) / 254  # (N, 1)
    bound = hx * wr.sum(1)[None, :] + xr.sum(1)[:, None] * hw.T + reg.sum() * hx * hw.T  # (M, N)
    exact = x64 @ w64.T
    bound = bound + tol.rounding_floor(dtype, K) * (x64.abs() @ w64.abs().T)
    y, where = int8_matmul(candidate, x, w, device)
    ah.assert_tensor(y, (B, T, N), dtype, name="int8_matmul", where=where)
    ah.assert_within((y.to(torch.float64).reshape(-1, N) - exact).abs(), bound, name="int8_matmul error", where=where)


@pytest.mark.needs(MM)
@pytest.mark.capability("int8_matmul")
@pytest.mark.parametrize("case", ["shape-mismatch", "threshold-zero", "threshold-negative"])
def test_int8_matmul_bad_arguments_raise(candidate, case):
    x, w = ss.randn((3, 8), 0), ss.randn((4, 8), 1)
    kwargs, argument = {}, "threshold"
    if case == "shape-mismatch":
        w, argument = ss.randn((4, 7), 1), "w"
    else:
        kwargs["threshold"] = 0.0 if case == "threshold-zero" else -1.0
    with pytest.raises(ValueError, match=rf"\b{argument}\b"):
        candidate.quant.int8_matmul(x, w, **kwargs)
