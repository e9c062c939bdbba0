"""posenc: sinusoidal positional encoding (spec: docs/spec/posenc.md; reference: reference/posenc.py)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from fmspec.suites import asserts as ah
from fmspec.suites import strategies as ss

pytestmark = pytest.mark.component("posenc")
FEATURE = "posenc.sinusoidal"

positions = ss.sizes(1, 64)
dims = ss.sizes(1, 64)
bases = st.sampled_from([10000.0, 100.0, 500000.0])


# sin(x) of an angle x = pos · base^(-2i/d) that carries a relative rounding error δ is off by about |x|·δ:
# an entry is judged against the size of the largest angle (the position), after the pow, the product and
# the division or multiplication a correct implementation may order differently
ANGLE_ROUNDINGS = 4


def angle_scale(num_positions: int) -> float:
    return float(max(num_positions - 1, 1))


def closed_form(num_positions: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """The oracle: the paper's formula, element by element, with Python's math in float64."""
    rows = []
    for pos in range(num_positions):
        row = []
        for j in range(dim):
            angle = pos / base ** ((j - j % 2) / dim)
            row.append(math.sin(angle) if j % 2 == 0 else math.cos(angle))
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float64).reshape(num_positions, dim)


def sinusoidal(candidate, num_positions: int, dim: int, **kw) -> torch.Tensor:
    where = ah.snippet(FEATURE, num_positions, dim, **kw)
    pe = ah.call(candidate.posenc.sinusoidal, FEATURE, num_positions, dim, **kw)
    ah.assert_tensor(pe, (num_positions, dim), torch.float64, name="pe", where=where)
    return pe


@pytest.mark.smoke
@pytest.mark.needs(FEATURE)
@pytest.mark.parametrize("dim", [2, 8, 9], ids=lambda d: f"d{d}")
def test_position_zero_is_sin0_cos0(candidate, dim):
    """The worked example: PE(0) = [sin 0, cos 0, sin 0, cos 0, ...] = [0, 1, 0, 1, ...]."""
    pe = sinusoidal(candidate, 3, dim)
    expected = torch.tensor([float(j % 2) for j in range(dim)], dtype=torch.float64)
    ah.assert_equal(pe[0], expected, name="pe[0]", where=ah.snippet(FEATURE, 3, dim))


@pytest.mark.smoke
@pytest.mark.needs(FEATURE)
@given(num_positions=positions, dim=dims, base=bases)
@example(num_positions=64, dim=63, base=10000.0)  # odd d: a lone sin column last; the largest positions
@example(num_positions=64, dim=64, base=500000.0)
@example(num_positions=2, dim=1, base=100.0)  # one column: sin(pos) alone
@example(num_positions=1, dim=2, base=10000.0)
def test_matches_closed_form(candidate, num_positions, dim, base):
    """Oracle: every entry equals the paper's formula (interleaved sin/cos; an odd d ends with a sin)."""
    pe = sinusoidal(candidate, num_positions, dim, base=base)
    ah.assert_close(pe, closed_form(num_positions, dim, base), n=ANGLE_ROUNDINGS, scale=angle_scale(num_positions),
                    name="pe", where=ah.snippet(FEATURE, num_positions, dim, base=base))


@pytest.mark.needs(FEATURE)
@pytest.mark.parametrize("dim", [4, 9], ids=lambda d: f"d{d}")
def test_default_base_is_10000(candidate, dim):
    """Called without ``base``, the encoding is the paper's, base 10000 (the other tests pass base)."""
    pe = sinusoidal(candidate, 50, dim)
    ah.assert_close(pe, closed_form(50, dim, 10000.0), n=ANGLE_ROUNDINGS, scale=angle_scale(50), name="pe",
                    where=ah.snippet(FEATURE, 50, dim))


@pytest.mark.needs(FEATURE)
@given(num_positions=positions, dim=dims)
@example(num_positions=64, dim=63)
def test_values_in_unit_interval(candidate, num_positions, dim):
    pe = sinusoidal(candidate, num_positions, dim)
    assert pe.abs().max().item() <= 1.0, f"max |PE| = {pe.abs().max().item()} > 1 [{ah.snippet(FEATURE, num_positions, dim)}]"


@pytest.mark.needs(FEATURE)
@given(num_positions=positions, dim=ss.even_sizes(2, 64))
@example(num_positions=64, dim=2)
@example(num_positions=64, dim=64)
def test_sin_cos_pairs_have_unit_norm(candidate, num_positions, dim):
    """PE[p, 2i]^2 + PE[p, 2i+1]^2 = 1 for every position and pair."""
    pe = sinusoidal(candidate, num_positions, dim)
    pairs = pe.reshape(num_positions, dim // 2, 2)  # (T, d/2, [sin, cos])
    norms = pairs.pow(2).sum(-1)
    ah.assert_close(norms, torch.ones_like(norms), n=2, name="pair norms", where=ah.snippet(FEATURE, num_positions, dim))


@pytest.mark.needs(FEATURE)
@given(dim=ss.even_sizes(2, 64), p=st.integers(0, 200), q=st.integers(0, 200), k=st.integers(1, 200))
@example(dim=2, p=0, q=200, k=1)  # from position 0 and from far away
@example(dim=64, p=3, q=150, k=200)
def test_offset_is_a_fixed_rotation(candidate, dim, p, q, k):
    """PE(p + k) = R_k PE(p) with R_k block-diagonal 2x2 rotations that do not depend on p.

    For each pair, the rotation taking u = PE(p) to v = PE(p + k) has cos = u·v and sin = u×v; it must be
    the same when starting from q.
    """
    n = max(p, q) + k + 1
    pe = sinusoidal(candidate, n, dim).reshape(n, dim // 2, 2)  # (T, d/2, 2)

    def rotation(start: int) -> torch.Tensor:
        u, v = pe[start], pe[start + k]  # (d/2, 2) each
        cos = (u * v).sum(-1)
        sin = u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]
        return torch.stack([cos, sin], -1)  # (d/2, 2)

    # cos and sin are sums and differences of products of entries in [-1, 1]: judged against terms of size 1
    ah.assert_close(rotation(q), rotation(p), n=n, scale=1.0, name=f"rotation from {q} by {k}",
                    where=f"rotation from {p} by {k}, {ah.snippet(FEATURE, n, dim)}")


@pytest.mark.needs(FEATURE)
@given(dim=dims, p=st.integers(0, 200), q=st.integers(0, 200), k=st.integers(0, 200))
@example(dim=9, p=0, q=200, k=3)  # odd d: the lone sin column left out
@example(dim=64, p=5, q=190, k=0)
def test_dot_product_depends_only_on_offset(candidate, dim, p, q, k):
    """PE(p)·PE(p + k) = sum_i cos(k w_i) (+ an odd d's lone sin term aside) is the same for every p."""
    n = max(p, q) + k + 1
    pe = sinusoidal(candidate, n, dim)
    even = pe[:, : dim - dim % 2]  # the lone sin column of an odd d is not shift-invariant
    dots = torch.stack([even[p] @ even[p + k], even[q] @ even[q + k]])
    terms = max((even[i].abs() @ even[i + k].abs()).item() for i in (p, q))  # the sum of |terms|: it may cancel
    ah.assert_close(dots[1:], dots[:1], n=n * dim, scale=terms, name=f"PE({q})·PE({q + k})",
                    where=f"against PE({p})·PE({p + k}), {ah.snippet(FEATURE, n, dim)}")


@pytest.mark.needs(FEATURE)
def test_same_answer_when_called_twice(candidate):
    first = sinusoidal(candidate, 17, 12)
    second = sinusoidal(candidate, 17, 12)
    ah.assert_equal(second, first, name="second call", where=ah.snippet(FEATURE, 17, 12))


@pytest.mark.needs(FEATURE)
@pytest.mark.parametrize("args, kwargs, argument", [
    ((-1, 8), {}, "num_positions"), ((4, 0), {}, "dim"), ((4, -2), {}, "dim"), ((4, 2.5), {}, "dim")],
    ids=["negative-T", "zero-d", "negative-d", "float-d"])
def test_bad_arguments_raise_value_error(candidate, args, kwargs, argument):
    """num_positions < 0, dim not an int >= 1: ValueError (or TypeError) naming the argument."""
    with pytest.raises((ValueError, TypeError), match=rf"\b{argument}\b"):
        candidate.posenc.sinusoidal(*args, **kwargs)
