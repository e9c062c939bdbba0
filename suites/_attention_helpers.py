"""Oracles and strategies of the attention suite (imported ``as ath``).

Everything here is independent of any candidate and of ``reference.attention``. Softmax attention itself
is the suites' shared oracle (``orc.dense_attention``, ``suites/oracles.py``), its inputs the shared
``ss.qkv``; what is attention's own is here:

- **oracle**: the quadratic form of kernel (linear) attention; each sparse pattern's mask by its
  definition, written as a predicate and evaluated entry by entry; the scale of an attention output's
  rounding error (:func:`value_scale`);
- **strategies**: shapes (B, H, Tq, Tk, D, Dv and a seed, for ``ss.qkv(**s)``; :func:`shape` writes one out
  for ``@example``), mask shapes, and sparse patterns with their arguments (:class:`SparseCase`), the
  revealing ones (:data:`EDGE_CASES`) drawn often.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from hypothesis import strategies as st

from fmspec.suites import oracles as orc
from fmspec.suites import strategies as ss


# ================================================================================================ oracle
def value_scale(v: torch.Tensor) -> float:
    """max|V|, for ``assert_close(scale=)``: an attention output is a convex combination of V's rows, so its
    rounding error is relative to |V|, not to the output itself, which cancels where V's rows differ in sign."""
    return v.detach().to(torch.float64).abs().max().item() if v.numel() else 0.0


def elu1(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x > 0, x + 1.0, torch.exp(x))  # elu(x) + 1, written out


def quadratic_kernel_attention(fq: torch.Tensor, fk: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
    """out = A V / (A 1) with A = φ(Q) φ(K)^T (⊙ [j <= i] if causal): the quadratic form, float64."""
    a = fq.to(torch.float64) @ fk.to(torch.float64).transpose(-2, -1)  # (B, H, Tq, Tk)
    if causal:
        a = a * orc.causal_mask(a.shape[-2], a.shape[-1])
    return (a @ v.to(torch.float64)) / a.sum(-1, keepdim=True)


# ---------------------------------------------------------------------------------- masks by definition
def mask_from(t: int, sees) -> torch.Tensor:
    """The (T, T) mask whose entry (i, j) is ``sees(i, j)``, with i a column and j a row of positions."""
    i, j = torch.arange(t)[:, None], torch.arange(t)[None, :]
    return torch.as_tensor(sees(i, j), dtype=torch.bool).expand(t, t).clone()


def sliding_window_def(t: int, window: int, causal: bool = False) -> torch.Tensor:
    if causal:
        return mask_from(t, lambda i, j: (i - j >= 0) & (i - j < window))
    return mask_from(t, lambda i, j: (i - j).abs() < window)


def longformer_def(t: int, window: int, global_idx) -> torch.Tensor:
    g = torch.zeros(t, dtype=torch.bool)
    g[list(global_idx)] = True
    return mask_from(t, lambda i, j: ((i - j).abs() < window) | g[i] | g[j])


def strided_def(t: int, stride: int) -> torch.Tensor:
    return mask_from(t, lambda i, j: (j <= i) & ((i - j < stride) | ((i - j) % stride == 0)))


def fixed_def(t: int, stride: int, c: int) -> torch.Tensor:
    return mask_from(t, lambda i, j: (j <= i) & ((j // stride == i // stride) | (j % stride >= stride - c)))


def block_view(mask: torch.Tensor, block: int) -> torch.Tensor | None:
    """The (nb, nb) block mask if ``mask`` is constant on every block (the last may be partial), else None."""
    t = mask.shape[0]
    nb = -(-t // block)
    b = torch.arange(t) // block  # block of each position
    ones = torch.zeros(nb, nb, dtype=torch.float64).index_put_((b[:, None].expand(t, t), b[None, :].expand(t, t)), mask.double(),
                                          accumulate=True)  # True entries per tile
    size = torch.bincount(b, minlength=nb).double()
    area = size[:, None] * size[None, :]  # entries per tile
    if not ((ones == 0) | (ones == area)).all():
        return None
    return ones == area


@dataclass(frozen=True)
class SparseCase:
    """A pattern, its arguments after T, and the keys per query row an O(T·W) method may list."""

    pattern: str
    t: int
    args: dict

    @property
    def width(self) -> int:
        a, t = self.args, self.t
        if self.pattern == "sliding_window":
            return 2 * a["window"]
        if self.pattern == "longformer":
            return 2 * a["window"] + len(a["global_idx"])
        if self.pattern == "bigbird":
            return a["block"] * (a["n_window"] + a["n_global"] + a["n_random"] + 2)
        if self.pattern == "strided":
            return 2 * a["stride"] + t // a["stride"]
        if self.pattern == "fixed":
            return 2 * a["stride"] + a["c"] * -(-t // a["stride"])
        raise KeyError(self.pattern)

    @property
    def dense_rows(self) -> int:
        """Rows that legitimately see all T keys (global tokens)."""
        if self.pattern == "longformer":
            return len(self.args["global_idx"])
        if self.pattern == "bigbird":
            return self.args["n_global"] * self.args["block"]
        return 0

    def mask_def(self) -> torch.Tensor | None:
        """The pattern's mask from its definition (None for BigBird, whose random part is the candidate's)."""
        a, t = self.args, self.t
        if self.pattern == "sliding_window":
            return sliding_window_def(t, a["window"], a.get("causal", False))
        if self.pattern == "longformer":
            return longformer_def(t, a["window"], a["global_idx"])
        if self.pattern == "strided":
            return strided_def(t, a["stride"])
        if self.pattern == "fixed":
            return fixed_def(t, a["stride"], a["c"])
        return None


# ============================================================================================ strategies
EDGE_CASES = {  # the arguments that reveal the usual off-by-one and edge bugs, drawn 1 time in 3 (sparse_cases)
    "sliding_window": [SparseCase("sliding_window", t, {"window": w, "causal": c}) for t, w, c in [
        (7, 1, False),  # the diagonal only
        (6, 6, False),  # window = T: the first and last rows reach the far end
        (5, 7, False),  # window past both ends
        (8, 3, True), (5, 5, True), (1, 1, False)]],
    "longformer": [SparseCase("longformer", t, {"window": w, "global_idx": g}) for t, w, g in [
        (7, 1, [0, 6]),  # global tokens at both edges, no band beyond the diagonal
        (6, 7, []),  # window past both ends, no global token
        (9, 2, [4]), (1, 1, [0])]],
    "bigbird": [SparseCase("bigbird", t, {"block": b, "n_random": r, "n_window": w, "n_global": g, "seed": 0})
                for t, b, r, w, g in [
                    (11, 3, 1, 3, 1),  # a partial last block
                    (9, 2, 3, 0, 2),  # no window; more random blocks than some rows have room for
                    (4, 4, 2, 1, 1),  # one block
                    (10, 4, 0, 5, 0)]],  # a window wider than the sequence
    "strided": [SparseCase("strided", t, {"stride": l}) for t, l in [(7, 1), (7, 7), (6, 7), (9, 3), (1, 1)]],
    "fixed": [SparseCase("fixed", t, {"stride": l, "c": c}) for t, l, c in [
        (8, 3, 0), (8, 3, 3), (5, 1, 1), (5, 6, 2), (10, 4, 1)]],  # c = 0 and c = l; l = 1; l > T; a partial block
}


def sparse_cases(pattern: str, max_t: int = 24) -> st.SearchStrategy[SparseCase]:
    """A pattern with its arguments: one of :data:`EDGE_CASES` (no longer than ``max_t``) 1 time in 3 (and
    what a failing draw shrinks to first), else arguments drawn to cover short, long, partial-block and
    degenerate cases."""
    edges = [c for c in EDGE_CASES[pattern] if c.t <= max_t]
    return st.one_of(st.sampled_from(edges), drawn_sparse_cases(pattern, max_t), drawn_sparse_cases(pattern, max_t))


@st.composite
def drawn_sparse_cases(draw, pattern: str, max_t: int = 24) -> SparseCase:
    """A pattern with arguments drawn to cover short, long, partial-block and degenerate cases."""
    t = draw(ss.sizes(1, max_t))
    if pattern == "sliding_window":
        args = {"window": draw(ss.sizes(1, t + 1)), "causal": draw(st.booleans())}
    elif pattern == "longformer":
        args = {"window": draw(ss.sizes(1, t + 1)),
                "global_idx": sorted(draw(st.sets(st.integers(0, t - 1), max_size=min(t, 3))))}
    elif pattern == "bigbird":
        block = draw(ss.sizes(1, 4))
        nb = -(-t // block)
        args = {"block": block, "n_random": draw(st.integers(0, 3)), "n_window": draw(st.sampled_from([0, 1, 3, 5])),
                "n_global": draw(st.integers(0, min(nb, 2))), "seed": draw(st.integers(0, 1000))}
    elif pattern == "strided":
        args = {"stride": draw(ss.sizes(1, t + 1))}
    elif pattern == "fixed":
        stride = draw(ss.sizes(1, t + 1))
        args = {"stride": stride, "c": draw(st.integers(0, stride))}
    else:
        raise KeyError(pattern)
    return SparseCase(pattern, t, args)


MASK_SHAPES = ("none", "TqTk", "B1TqTk", "1H1Tk", "BHTqTk")


def mask_shape(kind: str, b: int, h: int, tq: int, tk: int) -> tuple[int, ...] | None:
    return {"none": None, "TqTk": (tq, tk), "B1TqTk": (b, 1, tq, tk), "1H1Tk": (1, h, 1, tk),
            "BHTqTk": (b, h, tq, tk)}[kind]


@st.composite
def attention_shapes(draw, max_t: int = 9, max_d: int = 9, same_t: bool = False) -> dict:
    """{"b", "h", "tq", "tk", "d", "dv", "seed"}, for ``ss.qkv(**s)``: T = 1, one head and D not a power of 2
    included."""
    tq = draw(ss.sizes(1, max_t))
    return {"b": draw(ss.sizes(1, 2)), "h": draw(ss.sizes(1, 3)), "tq": tq,
            "tk": tq if same_t else draw(ss.sizes(1, max_t)), "d": draw(ss.sizes(1, max_d)),
            "dv": draw(ss.sizes(1, max_d)), "seed": draw(ss.seeds())}


def shape(b: int = 1, h: int = 2, tq: int = 3, tk: int = 3, d: int = 3, dv: int | None = None, seed: int = 0) -> dict:
    """One :func:`attention_shapes` draw written out, for ``@example``: ``shape(tq=2, tk=5)``."""
    return {"b": b, "h": h, "tq": tq, "tk": tk, "d": d, "dv": d if dv is None else dv, "seed": seed}
