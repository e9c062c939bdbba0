"""attention: scaled dot-product, multi-head, sparse masks and their efficient forms, linear/kernel
attention, Performer, Linformer (spec: docs/spec/attention.md; reference: reference/attention/)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from fmspec.suites import _attention_helpers as ath
from fmspec.suites import asserts as ah
from fmspec.suites import memory as mem
from fmspec.suites import oracles as orc
from fmspec.suites import strategies as ss
from fmspec.suites import tolerances as tol

pytestmark = pytest.mark.component("attention")
SDP = "attention.scaled_dot_product"
MHA = "attention.multi_head"
SPARSE = "attention.sparse"
LINEAR = "attention.linear"
PERFORMER = "attention.performer"
LINFORMER = "attention.linformer"
PATTERNS = ["sliding_window", "longformer", "bigbird", "strided", "fixed"]
MASK_FN = {p: f"attention.{p}_mask" for p in PATTERNS}
dtypes = pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])


def sdp(candidate, q, k, v, **kw):
    out = ah.call(candidate.attention.scaled_dot_product, SDP, q, k, v, **kw)
    return out


def mask_for(kind: str, s: dict) -> torch.Tensor | None:
    """A random bool mask of one of ``ath.MASK_SHAPES`` for the shapes ``s`` (from seed s["seed"] + 3)."""
    shape = ath.mask_shape(kind, s["b"], s["h"], s["tq"], s["tk"])
    return None if shape is None else ss.random_mask(shape, s["seed"] + 3)


mask_kinds = st.sampled_from(ath.MASK_SHAPES)
# revealing shapes, for @example: causal with Tq < Tk and Tq > Tk (top-left: rows i >= Tk see every key), a
# (Tq, Tk) mask whose row 1 is all False (seed 6), one query and one key, odd head dims
TQ_LT_TK = ath.shape(tq=2, tk=5, d=3, dv=2)
TQ_GT_TK = ath.shape(b=2, tq=5, tk=2, d=5, dv=3)
EMPTY_ROW = ath.shape(tq=4, tk=3, d=3, dv=2, seed=6)  # mask_for("TqTk", EMPTY_ROW)[1] is all False
ONE_BY_ONE = ath.shape(b=2, h=1, tq=1, tk=1, d=1, dv=1)


# ============================================================================ scaled dot-product attention
@pytest.mark.smoke
@pytest.mark.needs(SDP)
def test_worked_example_two_tokens(candidate):
    """Lecture 004's formula on q = k = I (D = 2), v = [[1, 2], [3, 4]]: row 0 weights softmax([1/√2, 0])."""
    q = torch.eye(2, dtype=torch.float64).reshape(1, 1, 2, 2)
    v = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64).reshape(1, 1, 2, 2)
    a = math.exp(1 / math.sqrt(2)) / (math.exp(1 / math.sqrt(2)) + 1)  # 0.6698
    expected = torch.tensor([[a + 3 * (1 - a), 2 * a + 4 * (1 - a)], [(1 - a) + 3 * a, 2 * (1 - a) + 4 * a]],
                            dtype=torch.float64).reshape(1, 1, 2, 2)
    out = sdp(candidate, q, q, v)
    ah.assert_close(out, expected, n=2, where=ah.snippet(SDP, q, q, v))


@pytest.mark.smoke
@pytest.mark.needs(SDP)
@dtypes
@given(s=ath.attention_shapes(), causal=st.booleans(), scale=st.sampled_from([None, 0.3, 2.0]), mask_kind=mask_kinds)
@example(s=TQ_LT_TK, causal=True, scale=None, mask_kind="none")
@example(s=TQ_GT_TK, causal=True, scale=None, mask_kind="1H1Tk")
@example(s=EMPTY_ROW, causal=False, scale=0.3, mask_kind="TqTk")
@example(s=EMPTY_ROW, causal=True, scale=None, mask_kind="B1TqTk")
@example(s=ONE_BY_ONE, causal=True, scale=2.0, mask_kind="none")
def test_matches_torch_sdpa_float64(candidate, dtype, s, causal, scale, mask_kind):
    """Oracle: softmax attention in float64 (``orc.dense_attention``, the formula torch SDPA computes) under the
    same mask (any broadcast shape), causal top-left, scale; float32 within twice the same formula's float32
    error."""
    q, k, v = ss.qkv(**s, dtype=dtype)
    mask = mask_for(mask_kind, s)
    kw = {"mask": mask, "causal": causal, "scale": scale}
    oracle = orc.dense_attention(q.double(), k.double(), v.double(), **kw)
    out = sdp(candidate, q, k, v, **kw)
    ah.assert_close(out, oracle, dtype=dtype, n=max(s["tk"], s["d"]), baseline=orc.dense_attention(q, k, v, **kw),
                    scale=ath.value_scale(v), where=ah.snippet(SDP, q, k, v, **kw))


@pytest.mark.needs(SDP)
@given(s=ath.attention_shapes(), mask_kind=mask_kinds)
@example(s=EMPTY_ROW, mask_kind="TqTk")
@example(s=TQ_GT_TK, mask_kind="BHTqTk")
def test_rows_sum_to_one(candidate, s, mask_kind):
    """Weights are >= 0, 0 where masked, and each row sums to 1 (0 for a row that sees no key)."""
    q, k, v = ss.qkv(**s)
    mask = mask_for(mask_kind, s)
    where = ah.snippet(SDP, q, k, v, mask=mask, return_weights=True)
    out, w = sdp(candidate, q, k, v, mask=mask, return_weights=True)
    ah.assert_tensor(w, (s["b"], s["h"], s["tq"], s["tk"]), name="weights", where=where)
    allowed = torch.ones(s["tq"], s["tk"], dtype=torch.bool) if mask is None else mask.expand_as(w)
    assert (w >= 0).all(), f"negative weight {w.min().item()} [{where}]"
    ah.assert_equal(w.masked_fill(allowed, 0), torch.zeros_like(w), name="weights where masked", where=where)
    expected = allowed.any(-1).to(torch.float64).expand(w.shape[:-1])
    ah.assert_close(w.sum(-1), expected, n=s["tk"], name="row sums", where=where)


@pytest.mark.needs(SDP)
@given(s=ath.attention_shapes(), causal=st.booleans(), mask_kind=mask_kinds)
@example(s=TQ_LT_TK, causal=True, mask_kind="none")
@example(s=TQ_GT_TK, causal=True, mask_kind="B1TqTk")
@example(s=EMPTY_ROW, causal=False, mask_kind="TqTk")
def test_output_in_convex_hull_of_values(candidate, s, causal, mask_kind):
    """Each output lies in the convex hull of the visible V rows: per coordinate, between their min and max."""
    q, k, v = ss.qkv(**s)
    q = q * 3  # sharper weights
    mask = mask_for(mask_kind, s)
    where = ah.snippet(SDP, q, k, v, mask=mask, causal=causal)
    out = sdp(candidate, q, k, v, mask=mask, causal=causal)
    allowed = torch.ones(s["tq"], s["tk"], dtype=torch.bool) if mask is None else mask
    if causal:
        allowed = allowed & orc.causal_mask(s["tq"], s["tk"])
    allowed = allowed.expand(s["b"], s["h"], s["tq"], s["tk"]).unsqueeze(-1)  # (B, H, Tq, Tk, 1)
    vv = v.unsqueeze(-3)  # (B, H, 1, Tk, Dv)
    hi = torch.where(allowed, vv, -math.inf).amax(-2)  # (B, H, Tq, Dv)
    lo = torch.where(allowed, vv, math.inf).amin(-2)
    seen = allowed.any(-2)  # (B, H, Tq, 1)
    slack = tol.rounding_floor(torch.float64, s["tk"]) * v.abs().max().item()
    ah.assert_tensor(out, (s["b"], s["h"], s["tq"], s["dv"]), where=where)
    outside = seen & ((out > hi + slack) | (out < lo - slack) | out.isnan())
    assert not outside.any(), f"output {out[outside][0].item():.6g} outside the visible V rows' range [{where}]"


@pytest.mark.needs(SDP)
@given(s=ath.attention_shapes())
@example(s=ath.shape(tq=4, tk=5, d=3, dv=2))
def test_permutation_equivariance(candidate, s):
    """Without a mask: permuting the queries permutes the outputs; permuting keys with values changes nothing."""
    q, k, v = ss.qkv(**s)
    pq = torch.randperm(s["tq"], generator=torch.Generator().manual_seed(s["seed"]))
    pk = torch.randperm(s["tk"], generator=torch.Generator().manual_seed(s["seed"] + 1))
    oracle = orc.dense_attention(q, k, v)
    out = sdp(candidate, q[..., pq, :], k[..., pk, :], v[..., pk, :])
    ah.assert_close(out, oracle[..., pq, :], n=s["tk"], scale=ath.value_scale(v),
                    where=ah.snippet(SDP, q, k, v) + f" with queries permuted by "
                    f"{pq.tolist()} and keys/values by {pk.tolist()}")


@pytest.mark.needs(SDP)
@dtypes
@given(s=ath.attention_shapes(), shift=st.sampled_from([1.0, 1e3]), mask_kind=mask_kinds)
@example(s=EMPTY_ROW, shift=1e3, mask_kind="TqTk")
@example(s=TQ_GT_TK, shift=1e3, mask_kind="none")
def test_constant_added_to_row_of_scores_changes_nothing(candidate, dtype, s, shift, mask_kind):
    """k_j + u for every key adds c_i = scale·q_i·u to row i of the scores: softmax must ignore it, even when
    c_i is large enough (|c_i| ~ 1000) that exp overflows without subtracting the row maximum."""
    q, k, v = ss.qkv(**s, dtype=dtype)
    mask = mask_for(mask_kind, s)
    u = ss.randn((s["d"],), s["seed"] + 4, dtype)  # (D,)
    c = (q.to(torch.float64) @ u.to(torch.float64)).abs().max().item() / math.sqrt(s["d"])
    u = u * (shift / max(c, 1e-3))
    oracle = orc.dense_attention(q.double(), k.double(), v.double(), mask=mask)
    ku = k + u
    out = sdp(candidate, q, ku, v, mask=mask)
    # scores of size |c| carry rounding eps·|c|: the problem's own condition, so the floor grows by (1 + |c|)
    n = max(s["tk"], s["d"]) * round((1 + shift) ** 2)
    ah.assert_close(out, oracle, dtype=dtype, n=n, baseline=orc.dense_attention(q, ku, v, mask=mask),
                    scale=ath.value_scale(v), where=ah.snippet(SDP, q, ku, v, mask=mask) + f", every key shifted by u (|scale·q·u| <= {shift})")


@pytest.mark.needs(SDP)
@given(s=ath.attention_shapes(), causal=st.booleans(), poison=st.sampled_from([1e30, math.inf, math.nan]))
@example(s=TQ_LT_TK, causal=True, poison=math.nan)
@example(s=TQ_GT_TK, causal=True, poison=math.inf)
def test_masked_keys_and_values_change_nothing(candidate, s, causal, poison):
    """Keys no query may see (padding) holding huge values, inf or NaN change neither output nor gradients."""
    q, k, v = ss.qkv(**s)
    keep = ss.random_mask((s["b"], 1, 1, s["tk"]), s["seed"] + 5, p=0.6)  # key padding mask
    oracle = orc.dense_attention(q, k, v, mask=keep, causal=causal)
    dead = ~keep.reshape(s["b"], 1, s["tk"], 1)
    kp, vp = k.masked_fill(dead, poison), v.masked_fill(dead, poison)
    qg = q.clone().requires_grad_(True)
    where = ah.snippet(SDP, q, kp, vp, mask=keep, causal=causal) + f", masked keys/values = {poison}"
    out = sdp(candidate, qg, kp, vp, mask=keep, causal=causal)
    ah.assert_close(out, oracle, n=s["tk"], scale=ath.value_scale(v), where=where)
    out.sum().backward()
    assert qg.grad is not None and torch.isfinite(qg.grad).all(), f"q.grad not finite [{where}]"


@pytest.mark.needs(SDP)
@given(s=ath.attention_shapes())
@example(s=ONE_BY_ONE)  # the only row is fully masked
@example(s=TQ_GT_TK)
def test_fully_masked_row_gives_zeros_and_finite_gradients(candidate, s):
    """A query that may see no key outputs 0 with weights 0; every gradient is finite (never NaN)."""
    q, k, v = ss.qkv(**s)
    mask = ss.random_mask((s["b"], s["h"], s["tq"], s["tk"]), s["seed"] + 6)
    empty = ss.random_mask((s["b"], 1, s["tq"], 1), s["seed"] + 7, p=0.5)
    empty[..., 0, :] = True  # at least one fully masked row
    mask = mask & ~empty
    leaves = [x.clone().requires_grad_(True) for x in (q, k, v)]
    where = ah.snippet(SDP, q, k, v, mask=mask, return_weights=True)
    out, w = sdp(candidate, *leaves, mask=mask, return_weights=True)
    rows = empty.expand(s["b"], s["h"], s["tq"], 1)
    ah.assert_equal(out.detach().masked_fill(~rows, 0), torch.zeros_like(out), name="fully masked rows", where=where)
    ah.assert_equal(w.detach().masked_fill(~rows, 0), torch.zeros_like(w), name="their weights", where=where)
    (out.sum() + w.sum()).backward()
    for name, x in zip("qkv", leaves):
        assert x.grad is not None and torch.isfinite(x.grad).all(), f"{name}.grad not finite [{where}]"
    ah.assert_equal(leaves[0].grad.masked_fill(~rows, 0), torch.zeros_like(q), name="q.grad of those rows", where=where)


@pytest.mark.smoke
@pytest.mark.needs(SDP)
def test_causal_is_top_left_aligned(candidate):
    """causal=True with Tq = 3 < Tk = 5: query i sees keys 0..i (torch SDPA's convention), not i + Tk - Tq."""
    s = {"b": 1, "h": 1, "tq": 3, "tk": 5, "d": 4, "dv": 3, "seed": 11}
    q, k, v = ss.qkv(**s)
    lower = torch.tensor([[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0]], dtype=torch.bool)
    oracle = orc.dense_attention(q, k, v, mask=lower)
    _, w = sdp(candidate, q, k, v, causal=True, return_weights=True)
    out = sdp(candidate, q, k, v, causal=True)
    where = ah.snippet(SDP, q, k, v, causal=True)
    ah.assert_equal(w > 0, lower.expand_as(w), name="weights > 0", where=where)
    ah.assert_close(out, oracle, n=5, where=where)


@pytest.mark.needs(SDP)
@given(s=ath.attention_shapes(), causal=st.booleans(), mask_kind=st.sampled_from(["none", "TqTk", "BHTqTk"]))
@example(s=TQ_LT_TK, causal=True, mask_kind="none")
@example(s=TQ_GT_TK, causal=True, mask_kind="BHTqTk")
def test_gradients_match_torch_sdpa_float64(candidate, s, causal, mask_kind):
    """d(out · g)/d(q, k, v) equals torch autograd through dense attention in float64 (every row sees a key)."""
    q, k, v = ss.qkv(**s)
    mask = mask_for(mask_kind, s)
    if mask is not None:
        mask = mask | (torch.arange(s["tk"]) == 0)  # key 0 visible to all: no empty row
    g = ss.randn((s["b"], s["h"], s["tq"], s["dv"]), s["seed"] + 8)
    ref = [x.clone().requires_grad_(True) for x in (q, k, v)]
    torch.autograd.backward(orc.dense_attention(*ref, mask=mask, causal=causal), g)
    got = [x.clone().requires_grad_(True) for x in (q, k, v)]
    where = ah.snippet(SDP, q, k, v, mask=mask, causal=causal)
    torch.autograd.backward(sdp(candidate, *got, mask=mask, causal=causal), g)
    # one scale for all three: a gradient that is 0 in exact arithmetic (q.grad with one visible key) is
    # judged by the others' scale
    scale = max(x.grad.abs().max().item() for x in ref)
    for name, x, r in zip("qkv", got, ref):
        ah.assert_close(x.grad, r.grad, dtype=torch.float64, n=max(s["tq"], s["tk"], s["d"]), scale=scale,
                        name=f"{name}.grad", where=where)


@pytest.mark.needs(SDP)
def test_same_answer_when_called_twice(candidate):
    s = {"b": 2, "h": 2, "tq": 5, "tk": 6, "d": 3, "dv": 4, "seed": 3}
    q, k, v = ss.qkv(**s)
    first = sdp(candidate, q, k, v, causal=True)
    ah.assert_equal(sdp(candidate, q, k, v, causal=True), first, name="second call", where=ah.snippet(SDP, q, k, v, causal=True))


def names(argument: str) -> str:
    """The pattern a bad-argument error message must match: the argument's name as a word (``k`` in
    ``k.shape=(1, 2, 5, 4)``, not in ``keys``)."""
    return rf"\b{argument}\b"


def _bad_sdp_args():
    """case -> (args, kwargs, the argument the error must name)."""
    q, k, v = torch.zeros(1, 2, 4, 3), torch.zeros(1, 2, 5, 3), torch.zeros(1, 2, 5, 2)
    return {
        "k-head-dim": ((q, torch.zeros(1, 2, 5, 4), v), {}, "k"),
        "v-length": ((q, k, torch.zeros(1, 2, 6, 2)), {}, "v"),
        "k-dtype": ((q, k.double(), v), {}, "k"),
        "mask-shape": ((q, k, v), {"mask": torch.ones(4, 4, dtype=torch.bool)}, "mask"),
        "mask-dtype": ((q, k, v), {"mask": torch.ones(4, 5)}, "mask"),
        "q-not-tensor": ((q.tolist(), k, v), {}, "q"),
    }


@pytest.mark.needs(SDP)
@pytest.mark.parametrize("case", list(_bad_sdp_args()))
def test_bad_arguments_raise_value_error(candidate, case):
    """Mismatched shapes or dtypes, a mask that does not broadcast or is not bool, q not a tensor: ValueError (or
    TypeError) whose message names the argument."""
    args, kw, argument = _bad_sdp_args()[case]
    with pytest.raises((ValueError, TypeError), match=names(argument)):
        candidate.attention.scaled_dot_product(*args, **kw)


# ================================================================================== multi-head attention
@st.composite
def mha_case(draw, gqa: bool = False):
    """{"b", "t", "h", "n_kv", "dh", "causal", "seed"}. With ``gqa``, h = n_kv · group with n_kv and group drawn
    from lists weighted (and shrinking) towards 2 and 3: the head order shows only with 2 or more kv heads of 2
    or more query heads each (tile order h % n_kv and repeat_interleave order h // group agree otherwise),
    which 3 draws in 5 have; MQA (n_kv = 1) and plain multi-head (group = 1) are drawn too."""
    if gqa:
        n_kv, group = draw(st.sampled_from([2, 3, 2, 1, 4]), "n_kv"), draw(st.sampled_from([2, 3, 2, 1]), "group")
        h = n_kv * group
    else:
        h = draw(ss.sizes(1, 4), "h")
        n_kv = h
    return {"b": draw(ss.sizes(1, 2)), "t": draw(ss.sizes(1, 8)), "h": h, "n_kv": n_kv, "dh": draw(ss.sizes(1, 5)),
            "causal": draw(st.booleans()), "seed": draw(ss.seeds())}


def mha(b=1, t=3, h=2, n_kv=None, dh=3, causal=False, seed=0) -> dict:
    """One multi-head case, for ``@example``."""
    return {"b": b, "t": t, "h": h, "n_kv": h if n_kv is None else n_kv, "dh": dh, "causal": causal, "seed": seed}


def per_head_oracle(x, w_q, w_k, w_v, w_o, c, terms: bool = False) -> torch.Tensor:
    """Head by head in float64: head h uses rows h·Dh.. of W_q, kv head h // (H / n_kv), scale 1/sqrt(Dh).

    ``terms``: the same weights applied to |x| |W_v|^T and then |W_o|, the size of the terms each output sums
    (the values x W_v^T and the output projection both sum products that may cancel), for ``assert_close(scale=)``.
    """
    x, w_q, w_k, w_v, w_o = (a.to(torch.float64) for a in (x, w_q, w_k, w_v, w_o))
    dh, group = c["dh"], c["h"] // c["n_kv"]
    heads = []
    for h in range(c["h"]):
        g = h // group
        q = x @ w_q[h * dh:(h + 1) * dh].T  # (B, T, Dh)
        k = x @ w_k[g * dh:(g + 1) * dh].T
        v = (x.abs() @ w_v[g * dh:(g + 1) * dh].abs().T) if terms else x @ w_v[g * dh:(g + 1) * dh].T
        heads.append(orc.dense_attention(q, k, v, causal=c["causal"], scale=1 / math.sqrt(dh)))
    return torch.cat(heads, dim=-1) @ (w_o.abs() if terms else w_o).T  # (B, T, d)


def mha_inputs(c, dtype):
    d, kvd, seed = c["h"] * c["dh"], c["n_kv"] * c["dh"], c["seed"]
    x = ss.randn((c["b"], c["t"], d), seed, dtype)
    ws = [ss.randn(shape, seed + i + 1, dtype, scale=d ** -0.5) for i, shape in
          enumerate([(d, d), (kvd, d), (kvd, d), (d, d)])]
    return x, ws


def check_mha(candidate, c, dtype):
    x, ws = mha_inputs(c, dtype)
    kw = {"causal": c["causal"]}
    if c["n_kv"] != c["h"]:
        kw["n_kv_heads"] = c["n_kv"]
    oracle = per_head_oracle(x, *ws, c)
    where = ah.snippet(MHA, x, *ws, c["h"], **kw)
    out = ah.call(candidate.attention.multi_head, MHA, x, *ws, c["h"], **kw)
    ah.assert_close(out, oracle, dtype=dtype, n=c["h"] * c["dh"] * c["t"],
                    scale=per_head_oracle(x, *ws, c, terms=True).max().item(), where=where)


@pytest.mark.smoke
@pytest.mark.needs(MHA)
@dtypes
@given(c=mha_case())
@example(c=mha(h=3, dh=3, causal=True))  # odd head dim, causal
@example(c=mha(b=2, t=1, h=4, dh=1))  # one position: every head's output is its own v
@example(c=mha(t=5, h=2, dh=5))
def test_multi_head_equals_per_head_attention(candidate, dtype, c):
    """Oracle: concat over heads of attention(x W_q^h, x W_k^h, x W_v^h) with 1/sqrt(D_head), then W_o."""
    check_mha(candidate, c, dtype)


@pytest.mark.needs(MHA)
@pytest.mark.capability("gqa")
@given(c=mha_case(gqa=True))
@example(c=mha(t=3, h=4, n_kv=2, dh=2))  # heads 0, 1 read kv head 0; heads 2, 3 kv head 1 (tiled: 0, 1, 0, 1)
@example(c=mha(t=4, h=6, n_kv=3, dh=3, causal=True))  # groups of 2 over 3 kv heads
@example(c=mha(b=2, t=2, h=6, n_kv=2, dh=1))  # groups of 3 over 2 kv heads
@example(c=mha(t=3, h=3, n_kv=1, dh=2))  # multi-query: one kv head for all
def test_grouped_query_heads_share_kv_in_order(candidate, c):
    """n_kv_heads < n_heads: query head h reads kv head h // (n_heads / n_kv_heads) (repeat_interleave order),
    not h % n_kv_heads (tile order, which agrees with it only when n_kv_heads = 1 or n_heads = n_kv_heads)."""
    check_mha(candidate, c, torch.float64)


@pytest.mark.needs(MHA)
@pytest.mark.parametrize("case", ["heads-not-dividing-d", "kv-heads-not-dividing", "w_k-shape", "x-2d"])
def test_multi_head_bad_arguments_raise(candidate, case):
    """n_heads not dividing d, n_kv_heads not dividing n_heads, a weight of the wrong shape, x not (B, T, d):
    ValueError (or TypeError) naming the argument."""
    x, ws = mha_inputs(mha(t=3, h=2, dh=3), torch.float64)
    args, kw, argument = {
        "heads-not-dividing-d": ((x, *ws, 4), {}, "n_heads"),
        "kv-heads-not-dividing": ((x, *ws, 2), {"n_kv_heads": 3}, "n_kv_heads"),
        "w_k-shape": ((x, ws[0], ws[1][:2], ws[2], ws[3], 2), {}, "w_k"),
        "x-2d": ((x[0], *ws, 2), {}, "x"),
    }[case]
    with pytest.raises((ValueError, TypeError), match=names(argument)):
        candidate.attention.multi_head(*args, **kw)


# ========================================================================================= sparse masks
def get_mask(candidate, pattern: str, t: int, **args) -> torch.Tensor:
    where = ah.snippet(MASK_FN[pattern], t, **args)
    m = ah.call(candidate.resolve(MASK_FN[pattern]), MASK_FN[pattern], t, **args)
    ah.assert_tensor(m, (t, t), torch.bool, name="mask", where=where)
    return m


def by_pattern(patterns, feature=None):
    """Parametrize over patterns, each needing its own mask function (or ``feature`` as well)."""
    return pytest.mark.parametrize("pattern", [
        pytest.param(p, marks=pytest.mark.needs(*([MASK_FN[p]] if feature is None else [feature, MASK_FN[p]])), id=p)
        for p in patterns])


@pytest.mark.smoke
@by_pattern(["sliding_window", "longformer", "strided", "fixed"])
@given(data=st.data())
def test_mask_matches_its_definition(candidate, pattern, data):
    """sliding |i-j| < w (causal 0 <= i-j < w); Longformer window | global rows | global columns;
    strided j <= i and (i-j < l or (i-j) mod l = 0); fixed j <= i and (same block of l or j mod l >= l-c)."""
    case = data.draw(ath.sparse_cases(pattern, max_t=20))
    expected = case.mask_def()
    m = get_mask(candidate, pattern, case.t, **case.args)
    ah.assert_equal(m, expected, name=f"{pattern} mask", where=ah.snippet(MASK_FN[pattern], case.t, **case.args))


@pytest.mark.needs(MASK_FN["sliding_window"])
@given(t=ss.sizes(1, 24), window=ss.sizes(1, 8), causal=st.booleans())
@example(t=6, window=1, causal=False)  # the diagonal only
@example(t=5, window=5, causal=False)  # window = T: the edges see everything
@example(t=4, window=8, causal=True)  # window past both ends
@example(t=1, window=2, causal=False)
def test_sliding_window_counts_per_row(candidate, t, window, causal):
    """Row i sees min(i, w-1) keys before it, itself, and (unless causal) min(T-1-i, w-1) after it."""
    m = get_mask(candidate, "sliding_window", t, window=window, causal=causal)
    expected = torch.tensor([min(i, window - 1) + 1 + (0 if causal else min(t - 1 - i, window - 1)) for i in range(t)])
    ah.assert_equal(m.sum(-1), expected, name="keys per row",
                    where=ah.snippet(MASK_FN["sliding_window"], t, window=window, causal=causal))


@pytest.mark.needs(MASK_FN["longformer"])
@given(data=st.data())
def test_longformer_global_rows_and_columns_are_full(candidate, data):
    """A global token sees every key (full row) and every query sees it (full column)."""
    case = data.draw(ath.sparse_cases("longformer", max_t=20))
    m = get_mask(candidate, "longformer", case.t, **case.args)
    g = case.args["global_idx"]
    where = ah.snippet(MASK_FN["longformer"], case.t, **case.args)
    ah.assert_equal(m[g, :], torch.ones(len(g), case.t, dtype=torch.bool), name="global rows", where=where)
    ah.assert_equal(m[:, g], torch.ones(case.t, len(g), dtype=torch.bool), name="global columns", where=where)


@by_pattern(["sliding_window", "strided", "fixed"])
@given(data=st.data())
def test_causal_patterns_have_no_future_key(candidate, pattern, data):
    """Causal patterns (strided, fixed, causal sliding window) see no key j > i, and always see j = i."""
    case = data.draw(ath.sparse_cases(pattern, max_t=24))
    args = {**case.args, "causal": True} if pattern == "sliding_window" else case.args
    m = get_mask(candidate, pattern, case.t, **args)
    where = ah.snippet(MASK_FN[pattern], case.t, **args)
    ah.assert_equal(m.triu(1), torch.zeros_like(m), name="keys after the query", where=where)
    ah.assert_equal(m.diagonal(), torch.ones(case.t, dtype=torch.bool), name="diagonal", where=where)


BIGBIRD = MASK_FN["bigbird"]


def bigbird_blocks(candidate, t, block, n_random, n_window, n_global, seed):
    args = dict(block=block, n_random=n_random, n_window=n_window, n_global=n_global, seed=seed)
    m = get_mask(candidate, "bigbird", t, **args)
    where = ah.snippet(BIGBIRD, t, **args)
    blocks = ath.block_view(m, block)
    assert blocks is not None, f"mask is not constant on {block}x{block} blocks [{where}]"
    return m, blocks, where


def check_bigbird_structure(blocks, n_random, n_window, n_global, where):
    """Global rows/columns full; window band present; exactly min(r, available) more blocks per other row."""
    nb = blocks.shape[0]
    half = n_window // 2
    for i in range(nb):
        if i < n_global:
            ah.assert_equal(blocks[i], torch.ones(nb, dtype=torch.bool), name=f"global block row {i}", where=where)
            continue
        fixed = torch.tensor([(abs(i - j) <= half and n_window > 0) or j < n_global for j in range(nb)])
        ah.assert_equal(blocks[i] & fixed, fixed, name=f"window and global blocks of row block {i}", where=where)
        extra = int((blocks[i] & ~fixed).sum())
        expected = min(n_random, int((~fixed).sum()))
        assert extra == expected, (f"row block {i} has {extra} random blocks, expected {expected} "
                                   f"(r={n_random} drawn from the {int((~fixed).sum())} outside window and global) [{where}]")


@pytest.mark.smoke
@pytest.mark.needs(BIGBIRD)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bigbird_figure_worked_example(candidate, seed):
    """Lecture 001's BigBird figure on an 8x8 grid of tokens (block 1): (a) random r = 2: two keys per row;
    (b) window w = 3: the band |i - j| <= 1; (c) global g = 2: rows and columns 0, 1; (d) all three."""
    t = 8
    a, _, where = bigbird_blocks(candidate, t, 1, 2, 0, 0, seed)
    ah.assert_equal(a.sum(-1), torch.full((t,), 2), name="(a) keys per row", where=where)
    b, _, where = bigbird_blocks(candidate, t, 1, 0, 3, 0, seed)
    ah.assert_equal(b, ath.mask_from(t, lambda i, j: (i - j).abs() <= 1), name="(b) window", where=where)
    c, _, where = bigbird_blocks(candidate, t, 1, 0, 0, 2, seed)
    ah.assert_equal(c, ath.mask_from(t, lambda i, j: (i < 2) | (j < 2)), name="(c) global", where=where)
    d, blocks, where = bigbird_blocks(candidate, t, 1, 2, 3, 2, seed)
    ah.assert_equal(d & (b | c), b | c, name="(d) contains (b) and (c)", where=where)
    ah.assert_equal((d & ~(b | c)).sum(-1), torch.tensor([0, 0] + [2] * 6), name="(d) random keys per row", where=where)


@pytest.mark.needs(BIGBIRD)
@given(t=ss.sizes(1, 40), block=ss.sizes(1, 5), n_random=st.integers(0, 3), n_window=st.sampled_from([0, 1, 3, 5]),
       n_global=st.integers(0, 2), seed=st.integers(0, 10_000))
@example(t=11, block=3, n_random=2, n_window=3, n_global=1, seed=0)  # a partial last block
@example(t=8, block=2, n_random=3, n_window=5, n_global=2, seed=1)  # more random blocks than there is room for
@example(t=3, block=5, n_random=1, n_window=1, n_global=1, seed=2)  # one (partial) block
def test_bigbird_mask_is_blocked_window_global_random(candidate, t, block, n_random, n_window, n_global, seed):
    """Constant on blocks; global block rows and columns full; the block window; r random blocks more per row."""
    n_global = min(n_global, -(-t // block))
    _, blocks, where = bigbird_blocks(candidate, t, block, n_random, n_window, n_global, seed)
    check_bigbird_structure(blocks, n_random, n_window, n_global, where)


@pytest.mark.needs(BIGBIRD)
def test_bigbird_random_blocks_come_from_whole_sequence(candidate):
    """Over seeds 0..39, every row block's random blocks cover every block outside its window and the
    global ones, before and after it (a uniform draw misses a given block with probability < 1e-4)."""
    t, block, r, w, g = 48, 4, 2, 3, 1
    nb = t // block
    seen = torch.zeros(nb, nb, dtype=torch.bool)
    for seed in range(40):
        _, blocks, where = bigbird_blocks(candidate, t, block, r, w, g, seed)
        seen |= blocks
    where = ah.snippet(BIGBIRD, t, block=block, n_random=r, n_window=w, n_global=g, seed="0..39")
    ah.assert_equal(seen, torch.ones(nb, nb, dtype=torch.bool), name="blocks ever chosen", where=where)


@pytest.mark.needs(BIGBIRD)
def test_bigbird_same_seed_same_mask(candidate):
    args = dict(block=2, n_random=2, n_window=3, n_global=1, seed=7)
    first = get_mask(candidate, "bigbird", 20, **args)
    ah.assert_equal(get_mask(candidate, "bigbird", 20, **args), first, name="second call",
                    where=ah.snippet(BIGBIRD, 20, **args))


BAD_MASK_ARGS = {  # case -> (pattern, args, kwargs, the argument the error must name)
    "sliding-window-0": ("sliding_window", (8,), {"window": 0}, "window"),
    "sliding-T-0": ("sliding_window", (0,), {"window": 2}, "T"),
    "longformer-global-out-of-range": ("longformer", (8,), {"window": 2, "global_idx": [8]}, "global_idx"),
    "bigbird-block-0": ("bigbird", (8,), {"block": 0, "n_random": 1, "n_window": 3, "n_global": 1, "seed": 0}, "block"),
    "bigbird-even-window": ("bigbird", (8,), {"block": 2, "n_random": 1, "n_window": 2, "n_global": 1, "seed": 0},
                            "n_window"),
    "strided-stride-0": ("strided", (8,), {"stride": 0}, "stride"),
    "fixed-c-above-stride": ("fixed", (8,), {"stride": 2, "c": 3}, "c"),
}


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.needs(MASK_FN[p])) for c, (p, *_) in BAD_MASK_ARGS.items()])
def test_mask_bad_arguments_raise(candidate, case):
    """A window, stride or block < 1, T < 1, a global index outside [0, T), an even BigBird window, c > stride:
    ValueError (or TypeError) naming the argument."""
    pattern, args, kw, argument = BAD_MASK_ARGS[case]
    with pytest.raises((ValueError, TypeError), match=names(argument)):
        candidate.resolve(MASK_FN[pattern])(*args, **kw)


# ================================================================================ efficient sparse forms
def sparse_oracle_mask(candidate, case: ath.SparseCase) -> torch.Tensor:
    """The pattern's mask by definition; BigBird's random part is the candidate's own (checked above)."""
    m = case.mask_def()
    return m if m is not None else get_mask(candidate, "bigbird", case.t, **case.args)


SPARSE_DTYPES = [(p, torch.float64) for p in PATTERNS] + [("sliding_window", torch.float32), ("bigbird", torch.float32)]


@pytest.mark.smoke
@pytest.mark.parametrize("pattern, dtype", [
    pytest.param(p, dt, marks=pytest.mark.needs(SPARSE, MASK_FN[p]), id=f"{p}-{str(dt).removeprefix('torch.')}")
    for p, dt in SPARSE_DTYPES])
@given(data=st.data())
def test_sparse_equals_dense_under_its_mask(candidate, pattern, dtype, data):
    """sparse(q, k, v, pattern, **args) == softmax attention under <pattern>_mask(T, **args) (oracle: dense
    attention in float64)."""
    case = data.draw(ath.sparse_cases(pattern))
    s = data.draw(ath.attention_shapes(max_t=1, max_d=6), label="shapes") | {"tq": case.t, "tk": case.t}
    q, k, v = ss.qkv(**s, dtype=dtype)
    mask = sparse_oracle_mask(candidate, case)
    where = ah.snippet(SPARSE, q, k, v, pattern, **case.args)
    out = ah.call(candidate.attention.sparse, SPARSE, q, k, v, pattern, **case.args)
    ah.assert_close(out, orc.dense_attention(q.double(), k.double(), v.double(), mask=mask), dtype=dtype,
                    n=max(case.t, s["d"]), baseline=orc.dense_attention(q, k, v, mask=mask), scale=ath.value_scale(v),
                    where=where)


@pytest.mark.needs(SPARSE, BIGBIRD)
@given(pattern=st.sampled_from(PATTERNS), data=st.data())
def test_sparse_gradients_match_dense(candidate, pattern, data):
    """Gradients of the efficient form equal those of dense attention under the mask (float64; one test for
    all patterns, drawn by hypothesis: the values are checked per pattern above)."""
    case = data.draw(ath.sparse_cases(pattern, max_t=16))
    s = data.draw(ath.attention_shapes(max_t=1, max_d=5), label="shapes") | {"tq": case.t, "tk": case.t}
    q, k, v = ss.qkv(**s)
    mask = sparse_oracle_mask(candidate, case)
    g = ss.randn((s["b"], s["h"], case.t, s["dv"]), s["seed"] + 9)
    ref = [x.clone().requires_grad_(True) for x in (q, k, v)]
    torch.autograd.backward(orc.dense_attention(*ref, mask=mask), g)  # a row with no visible key: 0, gradient 0
    got = [x.clone().requires_grad_(True) for x in (q, k, v)]
    where = ah.snippet(SPARSE, q, k, v, pattern, **case.args)
    torch.autograd.backward(ah.call(candidate.attention.sparse, SPARSE, *got, pattern, **case.args), g)
    scale = max(x.grad.abs().max().item() for x in ref)  # one scale for all three (see above)
    for name, x, r in zip("qkv", got, ref):
        ah.assert_close(x.grad, r.grad, dtype=torch.float64, n=max(case.t, s["d"]), scale=scale, name=f"{name}.grad",
                        where=where)


MEMORY_CASES = [
    ath.SparseCase("sliding_window", 1024, {"window": 4}),
    ath.SparseCase("longformer", 1024, {"window": 4, "global_idx": [0, 500]}),
    ath.SparseCase("bigbird", 1024, {"block": 8, "n_random": 1, "n_window": 3, "n_global": 1, "seed": 0}),
    ath.SparseCase("strided", 2048, {"stride": 32}),
    ath.SparseCase("fixed", 2048, {"stride": 32, "c": 1}),
]


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.needs(SPARSE), id=c.pattern) for c in MEMORY_CASES])
def test_sparse_memory_is_linear_not_quadratic(candidate, case, fmspec_metrics):
    """No tensor of forward or backward holds more than 2·B·H·(T·W + G·T)·D elements, W the pattern's keys per
    row (2w sliding, 2w+G Longformer, block·(w+g+r+2) BigBird, 2l+T/l strided, 2l+c·T/l fixed): well under
    the T² of one dense score matrix. Counted on every operation's output (views count as their storage)."""
    b, h, d = 1, 2, 2
    s = {"b": b, "h": h, "tq": case.t, "tk": case.t, "d": d, "dv": d, "seed": 0}
    q, k, v = (x.requires_grad_(True) for x in ss.qkv(**s))
    bound = 2 * b * h * (case.t * case.width + case.dense_rows * case.t) * d
    assert bound < b * case.t * case.t, "test sizes do not separate O(T·W) from O(T^2)"
    where = ah.snippet(SPARSE, q, k, v, case.pattern, **case.args)
    with mem.LargestAllocation() as probe:
        out = candidate.attention.sparse(q, k, v, case.pattern, **case.args)
        out.sum().backward()
    fmspec_metrics.update(largest=probe.numel, bound=bound, t_squared=case.t ** 2, op=probe.op)
    assert probe.numel <= bound, (f"largest intermediate {probe.numel} elements ({probe.op}, shape {probe.shape}) "
                                  f"> {bound} = 2·B·H·(T·W + G·T)·D with W={case.width}; T^2 = {case.t ** 2} [{where}]")


@pytest.mark.needs(SPARSE)
@pytest.mark.parametrize("case", ["unknown-pattern", "window-0", "q-k-lengths-differ"])
def test_sparse_bad_arguments_raise(candidate, case):
    """An unknown pattern, a pattern argument out of range, keys of another length than the queries (the
    patterns are self-attention): ValueError (or TypeError) naming the argument."""
    q = torch.zeros(1, 1, 6, 2)
    args, kw, argument = {
        "unknown-pattern": ((q, q, q, "diagonal"), {}, "pattern"),
        "window-0": ((q, q, q, "sliding_window"), {"window": 0}, "window"),
        "q-k-lengths-differ": ((q, q[..., :4, :], q[..., :4, :], "sliding_window"), {"window": 2}, "k")}[case]
    with pytest.raises((ValueError, TypeError), match=names(argument)):
        candidate.attention.sparse(*args, **kw)


# ==================================================================================== causal, any method
CAUSAL_METHODS = {
    "scaled_dot_product": (SDP, lambda a, q, k, v: a.scaled_dot_product(q, k, v, causal=True)),
    "linear": (LINEAR, lambda a, q, k, v: a.linear(q, k, v, causal=True)),
    "performer": (PERFORMER, lambda a, q, k, v: a.performer(q, k, v, 32, 0, causal=True)),
    "sparse-strided": (SPARSE, lambda a, q, k, v: a.sparse(q, k, v, "strided", stride=3)),
}


@pytest.mark.parametrize("method", [pytest.param(m, marks=pytest.mark.needs(f)) for m, (f, _) in CAUSAL_METHODS.items()])
@given(s=ath.attention_shapes(max_t=10, same_t=True), cut=st.integers(0, 9))
@example(s=ath.shape(tq=6, tk=6), cut=0)  # only the first output must stay
@example(s=ath.shape(tq=7, tk=7, d=5, dv=2), cut=5)  # only the last key changes
def test_causal_outputs_ignore_future_keys(candidate, method, s, cut):
    """Changing the keys and values after position t leaves outputs 0..t unchanged."""
    feature, fn = CAUSAL_METHODS[method]
    cut = min(cut, s["tq"] - 1)
    q, k, v = ss.qkv(**s)
    k2, v2 = k.clone(), v.clone()
    k2[..., cut + 1:, :] = ss.randn(k2[..., cut + 1:, :].shape, s["seed"] + 10, scale=3.0)
    v2[..., cut + 1:, :] = ss.randn(v2[..., cut + 1:, :].shape, s["seed"] + 11, scale=3.0)
    before = fn(candidate.attention, q, k, v)
    after = fn(candidate.attention, q, k2, v2)
    # the outputs mix rows of V (with weights that need not be >= 0 for a kernel method): judged against |V|
    ah.assert_close(after[..., :cut + 1, :], before[..., :cut + 1, :], n=s["tk"], scale=ath.value_scale(v),
                    name=f"outputs 0..{cut}", where=f"{method}: {ah.snippet(feature, q, k, v)}, keys/values after "
                    f"{cut} replaced")


# ======================================================================================= linear attention
@pytest.mark.smoke
@pytest.mark.needs(LINEAR)
@given(s=ath.attention_shapes(), causal=st.booleans())
@example(s=ath.shape(tq=5, tk=5, d=3, dv=2), causal=True)
@example(s=TQ_LT_TK, causal=False)
def test_linear_equals_quadratic_form(candidate, s, causal):
    """out = A V / (A 1), A = φ(Q) φ(K)^T with φ = elu + 1, masked by j <= i when causal (prefix sums)."""
    if causal:
        s = s | {"tk": s["tq"]}
    q, k, v = ss.qkv(**s)
    oracle = ath.quadratic_kernel_attention(ath.elu1(q), ath.elu1(k), v, causal)
    where = ah.snippet(LINEAR, q, k, v, causal=causal)
    out = ah.call(candidate.attention.linear, LINEAR, q, k, v, causal=causal)
    ah.assert_close(out, oracle, n=s["tk"] * s["d"], scale=ath.value_scale(v), where=where)


@pytest.mark.needs(LINEAR)
@given(s=ath.attention_shapes(same_t=True), causal=st.booleans())
def test_linear_with_callable_feature_map(candidate, s, causal):
    """feature_map may be a callable: φ(x) = [exp(x), x^2 + 1] (F = 2D) gives the same quadratic form."""
    def phi(x):
        return torch.cat([x.exp(), x * x + 1.0], dim=-1)

    q, k, v = ss.qkv(**s)
    oracle = ath.quadratic_kernel_attention(phi(q), phi(k), v, causal)
    out = ah.call(candidate.attention.linear, LINEAR, q, k, v, feature_map=phi, causal=causal)
    ah.assert_close(out, oracle, n=s["tk"] * s["d"], scale=ath.value_scale(v),
                    where=ah.snippet(LINEAR, q, k, v, feature_map="phi", causal=causal))


# ============================================================================================= performer
@pytest.mark.needs(PERFORMER)
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_performer_error_shrinks_as_features_grow(candidate, causal):
    """FAVOR+ estimates softmax attention (scale 1/sqrt(D)) with error ~ 1/sqrt(m): over seeds 0..7, the median
    RMS error (relative to the output's RMS) with m = 1024 features is under 0.4 times that with m = 16
    (expected ratio ~ 1/8; the reference: 0.33 -> 0.057, causal 0.15 -> 0.029), and under 0.1."""
    s = {"b": 1, "h": 2, "tq": 12, "tk": 12, "d": 6, "dv": 4, "seed": 5}
    q, k, v = ss.qkv(**s, scale=0.5)
    exact = orc.dense_attention(q, k, v, causal=causal)

    def median_error(m):
        errs = []
        for seed in range(8):
            out = ah.call(candidate.attention.performer, PERFORMER, q, k, v, m, seed, causal=causal)
            ah.assert_tensor(out, tuple(exact.shape), where=ah.snippet(PERFORMER, q, k, v, m, seed, causal=causal))
            errs.append(tol.rms_rel_error(out, exact))
        return sorted(errs)[len(errs) // 2]

    few, many = median_error(16), median_error(1024)
    where = ah.snippet(PERFORMER, q, k, v, "m", "seed 0..7", causal=causal)
    assert many < 0.4 * few and many < 0.1, f"median RMS rel. error {few:.3g} (m=16) -> {many:.3g} (m=1024) [{where}]"


@pytest.mark.needs(PERFORMER)
def test_performer_is_seeded(candidate):
    """The same seed gives the same output; another seed draws other features."""
    s = {"b": 1, "h": 1, "tq": 5, "tk": 5, "d": 3, "dv": 2, "seed": 1}
    q, k, v = ss.qkv(**s)
    first = candidate.attention.performer(q, k, v, 8, 3)
    where = ah.snippet(PERFORMER, q, k, v, 8, 3)
    ah.assert_equal(candidate.attention.performer(q, k, v, 8, 3), first, name="same seed", where=where)
    assert not torch.equal(candidate.attention.performer(q, k, v, 8, 4), first), f"seed 4 gave seed 3's output [{where}]"


# ============================================================================================= linformer
@pytest.mark.needs(LINFORMER)
@given(s=ath.attention_shapes(same_t=True), rank=ss.sizes(1, 6))
@example(s=ath.shape(tq=2, tk=2), rank=5)  # more rows than T
@example(s=ath.shape(tq=7, tk=7, d=5, dv=2), rank=1)
def test_linformer_equals_attention_on_projected_keys_values(candidate, s, rank):
    """softmax(Q (E K)^T / sqrt(D)) (F V) with E, F (k, T): oracle: dense attention on the projected keys
    and values."""
    q, k, v = ss.qkv(**s)
    t = s["tk"]
    e = ss.randn((rank, t), s["seed"] + 12, scale=t ** -0.5)
    f = ss.randn((rank, t), s["seed"] + 13, scale=t ** -0.5)
    oracle = orc.dense_attention(q, e @ k, f @ v)
    where = ah.snippet(LINFORMER, q, k, v, e, f)
    out = ah.call(candidate.attention.linformer, LINFORMER, q, k, v, e, f)
    # an output sums p_j (F V)_j over the k rows, each F V a sum over T that may cancel: the terms are at most
    # max_j (|F| |V|)_j, since the weights p_j sum to 1
    terms = (f.abs() @ v.abs()).max().item()
    ah.assert_close(out, oracle, n=t * s["d"], scale=terms, where=where)


@pytest.mark.needs(LINFORMER)
@given(s=ath.attention_shapes(same_t=True))
def test_linformer_with_identity_projections_is_full_attention(candidate, s):
    q, k, v = ss.qkv(**s)
    eye = torch.eye(s["tk"], dtype=torch.float64)
    out = ah.call(candidate.attention.linformer, LINFORMER, q, k, v, eye, eye)
    ah.assert_close(out, orc.dense_attention(q, k, v), n=s["tk"], scale=ath.value_scale(v),
                    where=ah.snippet(LINFORMER, q, k, v, "I", "I"))


BAD_KERNEL_ARGS = {  # case -> (feature, the call, the argument the error must name)
    "linear-unknown-feature-map": (LINEAR, lambda a, q: a.linear(q, q, q, feature_map="cosine"), "feature_map"),
    "linear-v-length": (LINEAR, lambda a, q: a.linear(q, q, q[..., :3, :]), "v"),
    "performer-0-features": (PERFORMER, lambda a, q: a.performer(q, q, q, 0, 0), "n_features"),
    "linformer-e-shape": (LINFORMER, lambda a, q: a.linformer(q, q, q, torch.zeros(2, 5), torch.zeros(2, 6)), "e"),
    "linformer-f-rank": (LINFORMER, lambda a, q: a.linformer(q, q, q, torch.zeros(2, 6), torch.zeros(3, 6)), "f"),
}


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.needs(f)) for c, (f, *_) in BAD_KERNEL_ARGS.items()])
def test_kernel_and_lowrank_bad_arguments_raise(candidate, case):
    """An unknown feature map, values of another length, no random features, projections of the wrong shape:
    ValueError (or TypeError) naming the argument."""
    q = torch.zeros(1, 1, 6, 2)
    _, call, argument = BAD_KERNEL_ARGS[case]
    with pytest.raises((ValueError, TypeError), match=names(argument)):
        call(candidate.attention, q)
