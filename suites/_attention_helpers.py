"""Oracles, definitions and strategies of the attention suite (imported ``as ath``).

Everything here is independent of any candidate and of ``reference.attention``: the oracle is torch's
``scaled_dot_product_attention`` in float64, the masks are their definitions written as predicates and
evaluated entry by entry, and the memory probe counts what the candidate's call allocates.

Generic pieces that could move to the shared modules: :class:`LargestAllocation` (to ``asserts``) and
:func:`random_mask` (to ``strategies``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from fmspec.suites import strategies as hh
from fmspec.suites import tolerances as tol

DTYPES = [torch.float32, torch.float64]
DTYPE_IDS = ["float32", "float64"]


# ------------------------------------------------------------------------------------------------ oracle
def causal_mask(tq: int, tk: int) -> torch.Tensor:
    """Top-left aligned: query i sees key j iff j <= i (torch SDPA's is_causal)."""
    return torch.tensor([[j <= i for j in range(tk)] for i in range(tq)], dtype=torch.bool).reshape(tq, tk)


def sdpa64(q, k, v, mask=None, causal=False, scale=None) -> torch.Tensor:
    """torch SDPA in float64; rows with no visible key are 0 (SDPA may give NaN there)."""
    q, k, v = (x.detach().to(torch.float64) for x in (q, k, v))
    tq, tk = q.shape[-2], k.shape[-2]
    allowed = torch.ones(tq, tk, dtype=torch.bool)
    if mask is not None:
        allowed = allowed & mask
    if causal:
        allowed = allowed & causal_mask(tq, tk)
    allowed = allowed.expand(*q.shape[:-2], tq, tk)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, scale=scale)
    return torch.where(allowed.any(-1, keepdim=True), out, torch.zeros(()).to(out))


def value_scale(v: torch.Tensor) -> float:
    """max|V|, for ``assert_close(scale=)``: an attention output is a convex combination of V's rows, so its
    rounding error is relative to |V|, not to the output itself, which cancels where V's rows differ in sign."""
    return v.detach().to(torch.float64).abs().max().item() if v.numel() else 0.0


def sdpa_same_dtype(q, k, v, mask=None, causal=False, scale=None) -> torch.Tensor:
    """The plain same-dtype computation whose error sets the bar (``baseline=``)."""
    tq, tk = q.shape[-2], k.shape[-2]
    allowed = torch.ones(tq, tk, dtype=torch.bool)
    if mask is not None:
        allowed = allowed & mask
    if causal:
        allowed = allowed & causal_mask(tq, tk)
    allowed = allowed.expand(*q.shape[:-2], tq, tk)
    out = F.scaled_dot_product_attention(q.detach(), k.detach(), v.detach(), attn_mask=allowed, scale=scale)
    return torch.where(allowed.any(-1, keepdim=True), out, torch.zeros(()).to(out))


def elu1(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x > 0, x + 1.0, torch.exp(x))  # elu(x) + 1, written out


def quadratic_kernel_attention(fq: torch.Tensor, fk: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
    """out = A V / (A 1) with A = φ(Q) φ(K)^T (⊙ [j <= i] if causal): the quadratic form, float64."""
    a = fq.to(torch.float64) @ fk.to(torch.float64).transpose(-2, -1)  # (B, H, Tq, Tk)
    if causal:
        a = a * causal_mask(a.shape[-2], a.shape[-1])
    return (a @ v.to(torch.float64)) / a.sum(-1, keepdim=True)


# ------------------------------------------------------------------------------- masks by definition
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


# ----------------------------------------------------------------------------------------------- memory
class LargestAllocation(TorchFunctionMode):
    """Records the largest tensor storage (in elements) that a torch function returns in the forward pass,
    and the largest tensor autograd saves for the backward pass.

    Views count as the storage they share, so an ``expand`` costs nothing and a gathered copy costs all
    of it. (A ``TorchFunctionMode`` plus ``saved_tensors_hooks``: unlike a dispatch mode, neither imports
    torch's compiler stack, which would rebind torch attributes the plugin guards.)::

        with LargestAllocation() as probe:
            out = f(q, k, v); out.sum().backward()
        probe.numel, probe.op, probe.shape
    """

    def __init__(self):
        super().__init__()
        self.numel = 0
        self.op = None
        self.shape = None
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    def _note(self, t, op: str) -> None:
        if isinstance(t, torch.Tensor):
            n = t.untyped_storage().nbytes() // max(t.element_size(), 1)
            if n > self.numel:
                self.numel, self.op, self.shape = n, op, tuple(t.shape)

    def _pack(self, t):
        self._note(t, "saved for backward")
        return t

    def __enter__(self):
        self._hooks.__enter__()
        return super().__enter__()

    def __exit__(self, *exc):
        super().__exit__(*exc)
        return self._hooks.__exit__(*exc)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            self._note(t, getattr(func, "__name__", str(func)))
        return out


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


# ------------------------------------------------------------------------------------------- strategies
@st.composite
def sparse_cases(draw, pattern: str, max_t: int = 24) -> SparseCase:
    """A pattern with arguments drawn to cover short, long, partial-block and degenerate cases."""
    t = draw(hh.sizes(1, max_t))
    if pattern == "sliding_window":
        args = {"window": draw(hh.sizes(1, t + 1)), "causal": draw(st.booleans())}
    elif pattern == "longformer":
        args = {"window": draw(hh.sizes(1, t + 1)),
                "global_idx": sorted(draw(st.sets(st.integers(0, t - 1), max_size=min(t, 3))))}
    elif pattern == "bigbird":
        block = draw(hh.sizes(1, 4))
        nb = -(-t // block)
        args = {"block": block, "n_random": draw(st.integers(0, 3)), "n_window": draw(st.sampled_from([0, 1, 3, 5])),
                "n_global": draw(st.integers(0, min(nb, 2))), "seed": draw(st.integers(0, 1000))}
    elif pattern == "strided":
        args = {"stride": draw(hh.sizes(1, t + 1))}
    elif pattern == "fixed":
        stride = draw(hh.sizes(1, t + 1))
        args = {"stride": stride, "c": draw(st.integers(0, stride))}
    else:
        raise KeyError(pattern)
    return SparseCase(pattern, t, args)


def random_mask(shape: tuple[int, ...], seed: int, p: float = 0.7) -> torch.Tensor:
    """A bool tensor, True with probability p, from a seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=gen) < p


MASK_SHAPES = ("none", "TqTk", "B1TqTk", "1H1Tk", "BHTqTk")


def mask_shape(kind: str, b: int, h: int, tq: int, tk: int) -> tuple[int, ...] | None:
    return {"none": None, "TqTk": (tq, tk), "B1TqTk": (b, 1, tq, tk), "1H1Tk": (1, h, 1, tk),
            "BHTqTk": (b, h, tq, tk)}[kind]


@st.composite
def attention_shapes(draw, max_t: int = 9, max_d: int = 9, same_t: bool = False) -> dict:
    """B, H, Tq, Tk, D, Dv: T = 1, one head and D not a power of 2 included."""
    tq = draw(hh.sizes(1, max_t))
    return {"b": draw(hh.sizes(1, 2)), "h": draw(hh.sizes(1, 3)), "tq": tq,
            "tk": tq if same_t else draw(hh.sizes(1, max_t)), "d": draw(hh.sizes(1, max_d)),
            "dv": draw(hh.sizes(1, max_d)), "seed": draw(hh.seeds())}


def qkv(s: dict, dtype: torch.dtype = torch.float64, scale: float = 1.0):
    """q (B, H, Tq, D), k (B, H, Tk, D), v (B, H, Tk, Dv) from one seed."""
    b, h, tq, tk, d, dv, seed = s["b"], s["h"], s["tq"], s["tk"], s["d"], s["dv"], s["seed"]
    return (hh.randn((b, h, tq, d), seed, dtype, scale=scale), hh.randn((b, h, tk, d), seed + 1, dtype, scale=scale),
            hh.randn((b, h, tk, dv), seed + 2, dtype))


def default_scale(d: int) -> float:
    return 1.0 / math.sqrt(d)


def assert_grads_close(got, ref, names, *, n: int, where: str) -> None:
    """Each gradient matches its float64 oracle, errors measured against the largest of all the oracles' scales:
    a gradient that is 0 in exact arithmetic (q.grad with one visible key) is judged by the others' scale."""
    __tracebackhide__ = True
    scale = max(r.detach().abs().max().item() if r.numel() else 0.0 for r in ref)
    limit = tol.allowed(torch.float64, n)
    for name, g, r in zip(names, got, ref):
        if g is None:
            raise AssertionError(f"{name}.grad is None: no gradient flowed [{where}]")
        if g.shape != r.shape or not torch.isfinite(g).all():
            raise AssertionError(f"{name}.grad: shape {tuple(g.shape)} (expected {tuple(r.shape)}) or not finite [{where}]")
        err = (g.detach().to(torch.float64) - r).abs().max().item() / scale if scale and g.numel() else 0.0
        if err > limit:
            raise AssertionError(f"{name}.grad: rel. error {err:.3g} > allowed {limit:.2g} (float64, n={n}, scale of "
                                 f"all gradients {scale:.3g}) [{where}]")


def rms_rel_error(actual: torch.Tensor, oracle: torch.Tensor) -> float:
    """sqrt(mean (actual - oracle)^2) / sqrt(mean oracle^2): the typical error of a statistical estimate."""
    a, o = actual.detach().to(torch.float64), oracle.detach().to(torch.float64)
    err = (a - o).pow(2).mean().sqrt().item()
    return err / max(o.pow(2).mean().sqrt().item(), 1e-300) if math.isfinite(err) else math.inf
