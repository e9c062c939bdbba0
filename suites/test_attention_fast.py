"""attention at GPU speed: sparse patterns as FlexAttention block masks, and ``sparse`` at long sequences
on CUDA (spec: docs/spec/attention.md, "Sparse attention as FlexAttention"; reference: reference/attention/flex.py).

FlexAttention (``torch.nn.attention.flex_attention``) takes a pattern as a ``BlockMask``: a
``mask_mod(b, h, q_idx, kv_idx) -> bool`` and, per row tile, the column tiles it may skip, must evaluate
(partial) or may take whole (full, the mask_mod not evaluated). ``attention.block_mask(pattern, T,
device="cpu", **pattern_args)`` is an optional contract function; a candidate that has it is checked on
the CPU without a GPU:

- its mask_mod, evaluated over the (T, T) grid the way FlexAttention evaluates it (``create_mask``,
  vmapped over scalar indices), equals ``<pattern>_mask(T, **args)`` entry by entry (BigBird: the
  candidate's own mask, whose random blocks it must reproduce exactly; the others: the definition);
- its tiles cover the mask: every tile holding a True entry is listed, no tile is listed both partial and
  full, and a full tile is True everywhere (inside T);
- FlexAttention with it equals dense attention under the mask (float64; eager on the CPU, and one case
  compiled, which reads the tile lists as the GPU kernel does).

On CUDA, ``sparse`` at T >= 1024 (where the reference switches to FlexAttention) equals dense attention
under the mask, values and gradients, in bfloat16 (every pattern) and float32 (sliding window, BigBird).
"""

from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fmspec.suites import _attention_helpers as ath
from fmspec.suites import asserts as ah
from fmspec.suites import oracles as orc
from fmspec.suites import strategies as ss

pytestmark = pytest.mark.component("attention")
SPARSE = "attention.sparse"
BLOCK_MASK = "attention.block_mask"
PATTERNS = ["sliding_window", "longformer", "bigbird", "strided", "fixed"]
MASK_FN = {p: f"attention.{p}_mask" for p in PATTERNS}
MAX_T = 300  # three tiles of 128, the last partial
few = settings(max_examples=max(5, settings().max_examples // 3))  # FlexAttention, its block mask and the oracle: ~20 ms an example


def by_pattern(*features: str):
    return pytest.mark.parametrize("pattern", [
        pytest.param(p, marks=pytest.mark.needs(*features, MASK_FN[p]), id=p) for p in PATTERNS])


def case(pattern: str, t: int, **args) -> ath.SparseCase:
    return ath.SparseCase(pattern, t, args)


def oracle_mask(candidate, c: ath.SparseCase) -> torch.Tensor:
    """The pattern's mask by definition; BigBird's random part is the candidate's own mask's."""
    m = c.mask_def()
    if m is None:
        m = ah.call(candidate.attention.bigbird_mask, MASK_FN["bigbird"], c.t, **c.args)
    return m.to(torch.bool)


def get_block_mask(candidate, c: ath.SparseCase, device: str = "cpu"):
    return candidate.attention.block_mask(c.pattern, c.t, device=device, **c.args)


def flex_attention(q, k, v, bm, compiled: bool = False):
    from torch.nn.attention.flex_attention import flex_attention as flex

    if compiled:  # in this process: a pool of compile workers would outlive the test (compile_threads = 1)
        import torch._inductor.config as inductor_config  # private: torch has no public per-call setting of it

        with inductor_config.patch(compile_threads=1):
            return torch.compile(flex)(q, k, v, block_mask=bm)
    with warnings.catch_warnings():  # eager FlexAttention warns that it materializes the scores: here it should
        warnings.simplefilter("ignore", UserWarning)
        return flex(q, k, v, block_mask=bm)


def tile_sets(bm) -> tuple[torch.Tensor, torch.Tensor]:
    """(partial, full), each (row tiles, column tiles) bool, from the BlockMask's lists (batch 0, head 0)."""
    def dense(num, idx):
        num, idx = num.reshape(-1, num.shape[-1])[0].cpu(), idx.reshape(-1, *idx.shape[-2:])[0].cpu()
        out = torch.zeros(idx.shape[0], idx.shape[1], dtype=torch.bool)
        for r in range(idx.shape[0]):
            out[r, idx[r, : int(num[r])].long()] = True
        return out
    partial = dense(bm.kv_num_blocks, bm.kv_indices)
    full = dense(bm.full_kv_num_blocks, bm.full_kv_indices) if bm.full_kv_num_blocks is not None else \
        torch.zeros_like(partial)
    return partial, full


# one explicit case per pattern, tried first (``@example(data=WORKED_EXAMPLE)``): several tiles, a partial last
# tile, full and partial tiles (sliding window 256 over T = 512: see reference/attention/flex.py's example)
WORKED = {c.pattern: c for c in [
    case("sliding_window", 512, window=256), case("longformer", 300, window=10, global_idx=[0, 130, 299]),
    case("bigbird", 300, block=16, n_random=2, n_window=3, n_global=2, seed=3),
    case("strided", 300, stride=17), case("fixed", 300, stride=17, c=3)]}
WORKED_EXAMPLE = "worked example"
examples = example(data=WORKED_EXAMPLE)


def draw_case(data, pattern: str) -> ath.SparseCase:
    """A drawn case of ``pattern`` (T up to 300), or the pattern's case of ``WORKED``."""
    if data == WORKED_EXAMPLE:
        return WORKED[pattern]
    return data.draw(ath.sparse_cases(pattern, max_t=MAX_T))


# ============================================================================== the block mask, on the CPU
@by_pattern(BLOCK_MASK)
@given(data=st.data())
@examples
def test_block_mask_equals_pattern_mask(candidate, pattern, data):
    """The BlockMask's mask_mod over the (T, T) grid (``create_mask``) equals ``<pattern>_mask(T, **args)``
    entry by entry, BigBird's random blocks and Longformer's global rows and columns included."""
    from torch.nn.attention.flex_attention import create_mask

    c = draw_case(data, pattern)
    where = ah.snippet(BLOCK_MASK, c.pattern, c.t, **c.args)
    bm = get_block_mask(candidate, c)
    assert tuple(bm.shape[-2:]) == (c.t, c.t), f"block mask shape {tuple(bm.shape)}, expected (..., {c.t}, {c.t}) [{where}]"
    got = create_mask(bm.mask_mod, None, None, c.t, c.t, device="cpu")[0, 0]  # (T, T)
    ah.assert_equal(got, oracle_mask(candidate, c), name="mask_mod over the grid", where=where)


@by_pattern(BLOCK_MASK)
@given(data=st.data())
@examples
def test_block_mask_tiles_cover_the_mask(candidate, pattern, data):
    """Every tile with a visible entry is listed (partial or full), none is listed twice, and a full tile
    (where FlexAttention skips the mask_mod) is visible everywhere inside T."""
    c = draw_case(data, pattern)
    where = ah.snippet(BLOCK_MASK, c.pattern, c.t, **c.args)
    bm = get_block_mask(candidate, c)
    bq, bk = bm.BLOCK_SIZE
    partial, full = tile_sets(bm)
    mask = oracle_mask(candidate, c)
    nq, nk = -(-c.t // bq), -(-c.t // bk)
    for r in range(nq):
        for s in range(nk):
            tile = mask[r * bq:(r + 1) * bq, s * bk:(s + 1) * bk]
            at = f"tile ({r}, {s}) of {bq}x{bk} [{where}]"
            assert not (partial[r, s] and full[r, s]), f"{at} is listed both partial and full"
            if tile.any():
                assert partial[r, s] or full[r, s], f"{at} holds {int(tile.sum())} visible entries but is not listed"
            if full[r, s]:
                assert tile.all(), f"{at} is listed full but {int((~tile).sum())} of its entries are masked"


@by_pattern(BLOCK_MASK)
def test_flex_attention_with_block_mask_equals_dense(candidate, pattern):
    """flex_attention(q, k, v, block_mask) equals dense attention under the mask (float64, eager on the CPU),
    on each pattern's worked case; a query that sees no key gives zeros. Eager FlexAttention traces the
    mask_mod with dynamo first (so a mask_mod that cannot be traced fails here, as under torch.compile), then
    evaluates it over the whole (T, T) grid: on drawn cases that is what test_block_mask_equals_pattern_mask
    checks, at ~0.2 s of tracing less a case (the tile lists are read by the compiled case below and checked
    by test_block_mask_tiles_cover_the_mask)."""
    c = WORKED[pattern]
    q, k, v = ss.qkv(b=1, h=2, d=8, dv=8, seed=5, tq=c.t, tk=c.t)
    where = ah.snippet(BLOCK_MASK, c.pattern, c.t, **c.args) + f"; flex_attention(q, k, v, bm), q {tuple(q.shape)}"
    out = flex_attention(q, k, v, get_block_mask(candidate, c))
    ah.assert_close(out, orc.dense_attention(q, k, v, mask=oracle_mask(candidate, c)), dtype=torch.float64,
                    n=c.t, scale=ath.value_scale(v), where=where)


COMPILED_CASES = [case("bigbird", 300, block=16, n_random=1, n_window=3, n_global=1, seed=0),
                  case("sliding_window", 300, window=40)]


@pytest.mark.needs(BLOCK_MASK)
@pytest.mark.parametrize("device", ["cpu", "cuda"])
@pytest.mark.parametrize("c", COMPILED_CASES, ids=[c.pattern for c in COMPILED_CASES])
def test_compiled_flex_attention_with_block_mask_equals_dense(candidate, device, c):
    """The same through ``torch.compile(flex_attention)``, which reads the tile lists (the eager form
    evaluates the mask_mod everywhere): float32, one case per pattern kind (a compilation is seconds)."""
    s = {"b": 1, "h": 2, "tq": c.t, "tk": c.t, "d": 16, "seed": 7}
    q, k, v = ss.qkv(**s, dtype=torch.float32, device=device)
    where = ah.snippet(BLOCK_MASK, c.pattern, c.t, device=device, **c.args) + "; torch.compile(flex_attention)"
    mask = oracle_mask(candidate, c).to(device)
    out = flex_attention(q, k, v, get_block_mask(candidate, c, device), compiled=True)
    expected = orc.dense_attention(q.double(), k.double(), v.double(), mask=mask)
    ah.assert_close(out, expected, dtype=torch.float32, n=c.t, baseline=orc.dense_attention(q, k, v, mask=mask),
                    scale=ath.value_scale(v), where=where)


# ================================================================================ sparse at long T, on CUDA
LONG_CASES = [
    case("sliding_window", 1100, window=100),
    case("sliding_window", 2048, window=256, causal=True),
    case("longformer", 1100, window=64, global_idx=[0, 500, 1099]),
    case("bigbird", 1100, block=64, n_random=2, n_window=3, n_global=1, seed=0),
    case("strided", 1100, stride=33),
    case("fixed", 1100, stride=64, c=8),
]
LONG_PARAMS = [(c, torch.bfloat16) for c in LONG_CASES] + [(LONG_CASES[0], torch.float32), (LONG_CASES[3], torch.float32)]


@pytest.mark.parametrize("device", ["cuda"])
@pytest.mark.parametrize("c, dtype", [
    pytest.param(c, dt, marks=pytest.mark.needs(SPARSE, MASK_FN[c.pattern]),
                 id=f"{c.pattern}{'-causal' if c.args.get('causal') else ''}-T{c.t}-{str(dt).removeprefix('torch.')}")
    for c, dt in LONG_PARAMS])
def test_sparse_long_sequence_on_cuda_equals_dense(candidate, device, dtype, c):
    """sparse(q, k, v, pattern, **args) at T >= 1024 on CUDA (the reference's FlexAttention path) equals
    dense attention under the mask: values and the gradients of q, k, v (oracle: float64 on the GPU;
    the bar: the same dense attention in ``dtype``)."""
    s = {"b": 1, "h": 2, "tq": c.t, "tk": c.t, "d": 64, "seed": c.t}
    q, k, v = ss.qkv(**s, dtype=dtype, device=device)
    g = ss.randn((1, 2, c.t, 64), c.t + 5, dtype, device)
    mask = oracle_mask(candidate, c).to(device)
    where = ah.snippet(SPARSE, q, k, v, c.pattern, **c.args)

    def run(fn, dt):
        xs = [x.detach().to(dt).requires_grad_(True) for x in (q, k, v)]
        out = fn(*xs)
        out.backward(g.to(dt))
        return [out.detach()] + [x.grad for x in xs]

    got = run(lambda *x: ah.call(candidate.attention.sparse, SPARSE, *x, c.pattern, **c.args), dtype)
    exact = run(lambda *x: orc.dense_attention(*x, mask=mask), torch.float64)
    plain = run(lambda *x: orc.dense_attention(*x, mask=mask), dtype)
    grad_scale = max(x.abs().max().item() for x in exact[1:])
    for name, a, e, b in zip(("out", "q.grad", "k.grad", "v.grad"), got, exact, plain):
        ah.assert_close(a, e, dtype=dtype, n=c.t, baseline=b, scale=ath.value_scale(v) if name == "out" else grad_scale,
                        name=name, where=where)
