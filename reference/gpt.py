"""A small GPT (and its BERT sibling) composed from the contract's components, trained end to end on
tiny-shakespeare (seed 000's exercise: "Start small: a Debug and Run mode. Expect a training perplexity
around 20 after 50 epochs"; the transformer of seeds 003 and 004; the tokenizer of seed 004).

``reference/tiny_gpt.py`` is the lecture's program exactly as the slides write it (no biases, norms,
residuals or positions), kept for measuring memory. This is that program with what it needs to train,
after GPT-2 and nanoGPT (Radford et al., 2019; Karpathy, nanoGPT ``model.py``)::

    x = E[ids] + P[:T]                            embed: token rows plus position rows     (B, T, d)
    for each of the L blocks (pre-norm):
        x = x + W_o · Attention(LN_1(x))          multi-head, causal for the decoder      (B, T, d)
        x = x + W_proj · GELU(W_fc · LN_2(x))     MLP d -> 4d -> d
    logits = LN_f(x) · E^T                        tied unembedding (or its own W_head)     (B, T, V)
    loss = mean_t -log softmax(logits[:, t])[ids[:, t+1]]       next token: labels shifted by one

Parameters: 12 d^2 L + 2 d V in the lecture's count (``accounting.transformer_params``), here
12 d^2 L + 13 d L + 2 d + d V (tied) [+ d V untied] [+ T_max d learned positions]: the biases (4d + 4d +
d a block), the layer norms (2d each) and the shared E.

**The encoder** (seed 004's BERT) is the same blocks without the causal mask, trained as a masked
language model (Devlin et al., 2019): 15% of the non-special positions are chosen; a chosen position is
replaced by [MASK] with probability 0.8, by a random ordinary token with 0.1, kept with 0.1; the loss is the
cross-entropy at the chosen positions only.

**Training**: AdamW (Loshchilov & Hutter, 2019; decay on the matrices only), the learning rate warmed up
linearly then decayed on a cosine to ``min_lr``, gradients clipped to a global norm, optional activation
checkpointing of the blocks and optional LoRA fine-tuning. Deterministic given the seed (parameters are
initialised by name, batches and masks drawn from seeded generators, dropout under a forked seed).

**Pieces.** Every step above is a contract feature, and :class:`Parts` says where each comes from: the
reference (this module and its siblings) or a candidate. The model checks each piece where it joins the
others: a crash inside it or an output of the wrong shape at once; a NaN or inf by replaying the run with
every value checked (forward and backward). A piece that breaks the composition raises
:class:`CompositionError` naming it, the step, the phase and the tensor, instead of a crash deep inside
the run or a NaN curve.

**Modes.** ``DEBUG``: a 0.3M-parameter model on a 40 KB slice, a few seconds on one CPU core (the suite
uses it). ``RUN``: the exercise's scale, a few million parameters, 50 epochs of the training split, minutes
on one GPU (``benchmarks/gpt_gpu.py``; ``python -m fmspec.reference.gpt run --device cuda``).

Worked examples: ``embed([[2, 1]], E=[[0, 0], [1, 0], [0, 1]], P=[[10, 0], [0, 10]]) = [[[10, 1], [1, 10]]]``;
``lm_loss`` of all-zero logits over V tokens is log V whatever the ids;
``lr_schedule(s, max_lr=1, warmup=2, total=6, min_lr=0.1)`` for s = 0..6 is 0.5, 1, 1, 0.868, 0.55,
0.232, 0.1.
"""

from __future__ import annotations

import importlib
import math
import os
import sys
import time
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fmspec.reference import tiny_gpt

LN_EPS = 1e-5
POSITION_STD = 0.01  # GPT-2's initial size of the position rows (token rows: 0.02); sinusoidal rows scaled to it
SPECIALS = ("<|endoftext|>", "[CLS]", "[SEP]", "[MASK]")  # every special token of the tokenizer


# ===================================================================================== contract pieces
def embed(ids: torch.Tensor, token_table: torch.Tensor, position_table: torch.Tensor) -> torch.Tensor:
    """x[b, t] = token_table[ids[b, t]] + position_table[t]: ids (B, T) -> (B, T, d).

    A context longer than the positional table, or an id outside the vocabulary, raises ValueError.
    """
    if not isinstance(ids, torch.Tensor) or ids.dtype not in (torch.int64, torch.int32) or ids.dim() != 2:
        raise TypeError(f"ids must be a (B, T) int64 tensor, got {getattr(ids, 'dtype', type(ids).__name__)}")
    for name, table in (("token_table", token_table), ("position_table", position_table)):
        if not isinstance(table, torch.Tensor) or not table.is_floating_point() or table.dim() != 2:
            raise TypeError(f"{name} must be a 2-dim floating-point tensor")
    if position_table.shape[1] != token_table.shape[1]:
        raise ValueError(f"position_table has width {position_table.shape[1]}, token_table {token_table.shape[1]}")
    T, V = ids.shape[1], token_table.shape[0]
    if T > position_table.shape[0]:
        raise ValueError(f"ids: context T={T} is longer than the positional table, position_table "
                         f"({position_table.shape[0]} positions)")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= V):
        raise ValueError(f"ids must lie in [0, {V}) (the vocabulary), got [{int(ids.min())}, {int(ids.max())}]")
    return token_table[ids] + position_table[:T]  # (B, T, d) + (T, d)


def _layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, (x.shape[-1],), weight, bias, LN_EPS)


class Block(nn.Module):
    """One pre-norm transformer block: x + W_o attn(LN_1 x), then x + W_proj GELU(W_fc LN_2 x).

    Submodules (the names LoRA targets and the initialisation use): ``ln1``, ``ln2`` (nn.LayerNorm(d)),
    ``q``, ``k``, ``v``, ``o`` (nn.Linear(d, d)), ``fc`` (nn.Linear(d, 4d)), ``proj`` (nn.Linear(4d, d)).
    ``attention(q, k, v, causal=...)`` on (B, H, T, d/H) is the attention core it must call, and
    ``layer_norm(x, weight, bias)`` the layer norm; ``dropout`` acts on both residual branches.
    """

    def __init__(self, d: int, n_heads: int, causal: bool = True, attention: Callable | None = None,
                 layer_norm: Callable | None = None, dropout: float = 0.0):
        super().__init__()
        if not isinstance(n_heads, int) or n_heads < 1 or d % n_heads:
            raise ValueError(f"n_heads must be an int >= 1 dividing d={d}, got {n_heads!r}")
        if attention is None:
            from fmspec.reference.attention import scaled_dot_product as attention
        self.n_heads, self.causal = n_heads, causal
        self.attention, self.layer_norm = attention, layer_norm or _layer_norm
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.fc, self.proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, T, d)
        B, T, d = x.shape
        H = self.n_heads
        h = self.layer_norm(x, self.ln1.weight, self.ln1.bias)
        q, k, v = (w(h).view(B, T, H, d // H).transpose(1, 2) for w in (self.q, self.k, self.v))  # (B, H, T, Dh)
        a = self.attention(q, k, v, causal=self.causal)  # (B, H, T, Dh)
        x = x + self.drop(self.o(a.transpose(1, 2).reshape(B, T, d)))  # heads side by side: (B, T, d)
        h = self.layer_norm(x, self.ln2.weight, self.ln2.bias)
        return x + self.drop(self.proj(F.gelu(self.fc(h))))  # (B, T, 4d) -> (B, T, d)


def lm_loss(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy: position t predicts ids[:, t + 1]; the mean over B (T - 1) predictions.

    logits (B, T, V), ids (B, T), T >= 2; the last position's logits predict nothing and do not count.
    """
    if logits.dim() != 3 or ids.shape != logits.shape[:2] or ids.shape[1] < 2:
        raise ValueError(f"logits (B, T, V) and ids (B, T) with T >= 2 expected, got {tuple(logits.shape)} "
                         f"and {tuple(ids.shape)}")
    return tiny_gpt.log_loss(logits[:, :-1], ids[:, 1:])  # labels shifted: (B, T-1, V) against (B, T-1)


def lr_schedule(step: int, *, max_lr: float, warmup: int, total: int, min_lr: float = 0.0) -> float:
    """Linear warmup to ``max_lr`` over ``warmup`` steps, then a cosine down to ``min_lr`` at ``total``::

        step < warmup:          max_lr (step + 1) / warmup
        warmup <= step < total: min_lr + (max_lr - min_lr) (1 + cos(pi (step - warmup) / (total - warmup))) / 2
        step >= total:          min_lr
    """
    for name, value in (("step", step), ("warmup", warmup), ("total", total)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    if not warmup <= total or total < 1:
        raise ValueError(f"need 0 <= warmup <= total and total >= 1, got warmup={warmup}, total={total}")
    if not 0 <= min_lr <= max_lr or not math.isfinite(max_lr):
        raise ValueError(f"need 0 <= min_lr <= max_lr (finite), got min_lr={min_lr!r}, max_lr={max_lr!r}")
    if step < warmup:
        return max_lr * (step + 1) / warmup
    if step >= total:
        return min_lr
    progress = (step - warmup) / (total - warmup)  # 0 -> 1
    return min_lr + (max_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


class AdamW(torch.optim.Optimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW`` computes it.

    For each parameter p with a gradient g (a parameter without one is left alone, decay included)::

        p <- p - lr * weight_decay * p                       decoupled decay
        m <- b1 m + (1 - b1) g,      v <- b2 v + (1 - b2) g^2
        p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01):
        if not lr >= 0 or not eps >= 0 or not weight_decay >= 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"bad AdamW hyperparameters lr={lr}, betas={betas}, eps={eps}, "
                             f"weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                state["t"] += 1
                t, m, v, g = state["t"], state["m"], state["v"], p.grad
                p.mul_(1 - lr * wd)
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                denom = (v / (1 - b2 ** t)).sqrt_().add_(eps)
                p.addcdiv_(m, denom, value=-lr / (1 - b1 ** t))


def clip_grad_norm(params: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale every gradient by min(1, max_norm / (norm + 1e-6)), norm = sqrt(sum_p |g_p|^2) over all of
    them together (one global norm, not one per tensor); returns that norm, measured before clipping."""
    grads = [p.grad for p in params if p.grad is not None]
    if not max_norm > 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm!r}")
    if not grads:
        return torch.tensor(0.0)
    norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads)).to(grads[0].dtype)
    scale = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
    for g in grads:
        g.mul_(scale.to(g.dtype))
    return norm


def mask_tokens(ids: torch.Tensor, *, mask_id: int, vocab_size: int, special_ids: Sequence[int],
                generator: torch.Generator, p: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: ``(inputs, chosen)``, both shaped like ``ids`` (B, T).

    Each position whose id is not special is chosen with probability ``p`` (independently); a chosen
    position becomes ``mask_id`` with probability 0.8, a token drawn uniformly from the ordinary
    (non-special) ids of [0, vocab_size) with 0.1, and keeps its id with 0.1. Specials are never chosen.
    Every draw comes from ``generator`` (on ids' device). ``ids`` is not modified.
    """
    specials = sorted({int(s) for s in special_ids})
    if not isinstance(vocab_size, int) or vocab_size <= len(specials):
        raise ValueError(f"vocab_size={vocab_size!r} leaves no ordinary token beside {len(specials)} special ids")
    if mask_id not in specials or any(not 0 <= s < vocab_size for s in specials):
        raise ValueError(f"mask_id={mask_id!r} and special_ids={specials} must be special ids in [0, {vocab_size})")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p!r}")
    if ids.dtype not in (torch.int64, torch.int32) or (ids.numel() and (ids.min() < 0 or ids.max() >= vocab_size)):
        raise ValueError(f"ids must be integer ids in [0, {vocab_size})")
    special = torch.isin(ids, torch.tensor(specials, device=ids.device))
    chosen = (torch.rand(ids.shape, generator=generator, device=ids.device) < p) & ~special
    how = torch.rand(ids.shape, generator=generator, device=ids.device)  # < 0.8 mask, < 0.9 random, else keep
    ordinary = torch.ones(vocab_size, dtype=torch.bool, device=ids.device)
    ordinary[specials] = False
    pool = ordinary.nonzero().squeeze(1)  # the ordinary ids
    random = pool[torch.randint(len(pool), ids.shape, generator=generator, device=ids.device)]
    inputs = torch.where(chosen & (how < 0.8), torch.full_like(ids, mask_id), ids)
    inputs = torch.where(chosen & (how >= 0.8) & (how < 0.9), random, inputs)
    return inputs, chosen


def masked_lm_loss(logits: torch.Tensor, ids: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the original ``ids`` at the ``chosen`` positions only; 0 (with a zero
    gradient) when none is chosen. logits (B, T, V), ids and chosen (B, T)."""
    if logits.dim() != 3 or ids.shape != logits.shape[:2] or chosen.shape != ids.shape or chosen.dtype != torch.bool:
        raise ValueError(f"logits (B, T, V), ids (B, T) and a bool chosen (B, T) expected, got {tuple(logits.shape)}, "
                         f"{tuple(ids.shape)}, {tuple(chosen.shape)} {chosen.dtype}")
    picked = logits[chosen]  # (N, V): the chosen positions only, the others never enter the sum
    nll = -torch.log_softmax(picked.float() if picked.dtype in (torch.float16, torch.bfloat16) else picked, -1)
    return nll.gather(-1, ids[chosen][:, None]).sum() / max(int(chosen.sum()), 1)


# ========================================================================================== composition
PIECES = {  # feature -> its place in the model (every one is taken from the candidate where it has it)
    "bpe.train": "trains the tokenizer on the training split",
    "bpe.Tokenizer": "encodes the corpus",
    "posenc.sinusoidal": "the positional table, when positions are sinusoidal",
    "attention.scaled_dot_product": "the attention core of every block (attention='dense')",
    "flash.flash_attention": "the attention core of every block (attention='flash')",
    "layers.layernorm_backward": "the backward pass of every layer norm",
    "checkpoint.checkpoint_sequential": "runs the blocks, when checkpointing",
    "lora.apply_lora": "wraps q and v for LoRA fine-tuning",
    "gpt.embed": "token and position embedding",
    "gpt.Block": "the transformer block",
    "gpt.lm_loss": "the decoder's next-token loss",
    "gpt.lr_schedule": "the learning rate of every step",
    "gpt.AdamW": "the optimizer",
    "gpt.clip_grad_norm": "gradient clipping",
    "gpt.mask_tokens": "the encoder's masking",
    "gpt.masked_lm_loss": "the encoder's loss",
}


@dataclass
class Parts:
    """The pieces a composition uses: ``parts["gpt.Block"]``; ``sources[feature]`` says whose it is and
    ``candidate`` holds the features a candidate provided."""

    pieces: dict
    sources: dict
    candidate: set = field(default_factory=set)

    @classmethod
    def reference(cls) -> "Parts":
        pieces = {}
        for feature in PIECES:
            component, name = feature.split(".")
            pieces[feature] = getattr(importlib.import_module(f"fmspec.reference.{component}"), name)
        return cls(pieces, {f: "reference" for f in PIECES})

    @classmethod
    def from_candidate(cls, resolve: Callable[[str], object], name: str) -> "Parts":
        """Each piece from ``resolve(feature)`` (the candidate's), the reference's where that raises AttributeError."""
        parts = cls.reference()
        for feature in PIECES:
            try:
                parts.pieces[feature] = resolve(feature)
            except AttributeError:
                continue
            parts.sources[feature] = name
            parts.candidate.add(feature)
        return parts

    def __getitem__(self, feature: str):
        return self.pieces[feature]

    def used(self, cfg: "Config", lora: bool = False) -> dict:
        """{feature: source} of the pieces a run with ``cfg`` uses."""
        skip = {"flash.flash_attention" if cfg.attention == "dense" else "attention.scaled_dot_product"}
        skip |= {"gpt.lm_loss"} if cfg.objective == "mlm" else {"gpt.mask_tokens", "gpt.masked_lm_loss"}
        skip |= set() if cfg.positions == "sinusoidal" else {"posenc.sinusoidal"}
        skip |= set() if cfg.checkpoint_segments else {"checkpoint.checkpoint_sequential"}
        skip |= set() if lora else {"lora.apply_lora"}
        return {f: s for f, s in self.sources.items() if f not in skip}


class CompositionError(RuntimeError):
    """A piece broke the composition: which one, whose, at which step and phase, and which tensor."""

    def __init__(self, feature: str, source: str, step, phase: str, tensor: str, problem: str):
        self.feature, self.source, self.step, self.phase, self.tensor, self.problem = (
            feature, source, step, phase, tensor, problem)
        super().__init__(f"{feature} ({source}) broke the composition at step {step}, {phase}: {tensor} {problem}")

    def info(self) -> dict:
        return {"component": self.feature, "source": self.source, "step": self.step, "phase": self.phase,
                "tensor": self.tensor, "problem": self.problem}


@dataclass
class Trace:
    """Where the run is, for error messages: the step ("build", "preflight", 0, 1, ...) and the phase;
    ``finite``: also check every value for NaN and inf (the checked replay of a run that produced one)."""

    step: object = "build"
    phase: str = "forward"
    finite: bool = False


def tensor_problem(t, shape=None, finite: bool = True) -> str | None:
    """Why ``t`` cannot go on: not a tensor, another shape, or (``finite``) a value that is NaN or inf."""
    if not isinstance(t, torch.Tensor):
        return f"is a {type(t).__name__}, not a tensor"
    if shape is not None and tuple(t.shape) != tuple(shape):
        return f"has shape {tuple(t.shape)}, expected {tuple(shape)}"
    if finite and t.is_floating_point() and not bool(torch.isfinite(t.detach()).all()):
        where = tuple(int(i) for i in (~torch.isfinite(t.detach())).nonzero()[0])
        return f"is not finite: {t.detach()[where].item()} at {where}"
    return None


class Piece:
    """A feature as the model calls it: errors and bad outputs become :class:`CompositionError`.

    Always checked (no cost): a crash inside the piece, and the output's type and shape (``shape(*args)``
    gives the shape expected; ``tensor=False`` for a piece whose output is not one tensor). The
    candidate's own ``ValueError``/``TypeError``/``NotImplementedError`` pass through unchanged (a clear
    refusal, or a feature not written yet). When ``trace.finite``: the output's values too, and the
    gradients its backward returns for the tensor arguments at positions ``grads``.
    """

    def __init__(self, feature: str, fn: Callable, source: str, trace: Trace, shape: Callable | None = None,
                 grads: tuple[int, ...] = (), tensor: bool = True):
        self.feature, self.fn, self.source, self.trace = feature, fn, source, trace
        self.shape, self.grads, self.tensor = shape, grads, tensor

    def fail(self, tensor: str, problem: str) -> CompositionError:
        return CompositionError(self.feature, self.source, self.trace.step, self.trace.phase, tensor, problem)

    def __call__(self, *args, **kwargs):
        finite = self.trace.finite
        if finite:
            args = list(args)
            for i in self.grads:
                if isinstance(args[i], torch.Tensor) and args[i].requires_grad:
                    args[i] = _GradCheck.apply(args[i], self, f"the gradient it returns for argument {i}")
        try:
            out = self.fn(*args, **kwargs)
        except (ValueError, TypeError, NotImplementedError, CompositionError):
            raise
        except Exception as exc:  # noqa: BLE001  a crash inside the piece: named, with the step
            raise self.fail("call", f"raised {type(exc).__name__}: {exc}") from exc
        problem = tensor_problem(out, self.shape(*args) if self.shape else None, finite) if self.tensor else None
        if problem:
            raise self.fail("output", problem)
        return out


class _GradCheck(torch.autograd.Function):
    """Identity forward; the backward checks the gradient arriving here, which the piece computed."""

    @staticmethod
    def forward(ctx, x, piece, what):
        ctx.piece, ctx.what, ctx.shape = piece, what, x.shape
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        problem = tensor_problem(grad, ctx.shape)
        if problem:
            ctx.piece.trace.phase = "backward"
            raise ctx.piece.fail(ctx.what, problem)
        return grad, None, None


class _ManualLayerNorm(torch.autograd.Function):
    """F.layer_norm forward, the backward from a ``layers.layernorm_backward`` (the candidate's gradient)."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, x, weight, bias, piece):
        ctx.save_for_backward(x, weight, bias)
        ctx.piece = piece
        return F.layer_norm(x, (x.shape[-1],), weight, bias, LN_EPS)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad_y):
        x, weight, bias = ctx.saved_tensors
        piece = ctx.piece
        grads = piece(x, weight, bias, grad_y.contiguous(), LN_EPS)
        for name, g, like in zip(("grad_x", "grad_weight", "grad_bias"), grads, (x, weight, bias)):
            problem = tensor_problem(g, like.shape, piece.trace.finite)
            if problem:
                piece.trace.phase = "backward"
                raise piece.fail(name, problem)
        return grads[0], grads[1], grads[2], None


def _attention_shape(q, k, v, **_):
    return (*q.shape[:-1], v.shape[-1])


@dataclass(frozen=True)
class Config:
    """The model: sizes, positions, attention kind, checkpointing, objective."""

    vocab_size: int = 512  # V: the tokenizer's vocabulary (256 bytes + specials + merges)
    d: int = 64  # hidden size
    n_layers: int = 2  # L
    n_heads: int = 4  # H; d_head = d / H
    context: int = 64  # T of a training sequence
    max_positions: int = 64  # rows of the positional table (>= context, or the first forward pass refuses)
    positions: str = "learned"  # "learned" (a trained table) or "sinusoidal" (posenc.sinusoidal, fixed)
    tied: bool = True  # unembedding = the token table transposed
    dropout: float = 0.0
    attention: str = "dense"  # "dense" (attention.scaled_dot_product) or "flash" (flash.flash_attention)
    checkpoint_segments: int = 0  # 0: off; k: the blocks run by checkpoint.checkpoint_sequential in k segments
    objective: str = "lm"  # "lm": decoder (causal, next token); "mlm": encoder (bidirectional, masked LM)


class GPT(nn.Module):
    """The composed model: ``model(ids)`` -> logits (B, T, V). ``model.trace`` says where a run is."""

    def __init__(self, cfg: Config, parts: Parts | None = None, seed: int = 0):
        super().__init__()
        for name, allowed in (("positions", ("learned", "sinusoidal")), ("attention", ("dense", "flash")),
                              ("objective", ("lm", "mlm"))):
            if getattr(cfg, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(cfg, name)!r}")
        self.cfg, self.parts, self.trace = cfg, parts or Parts.reference(), Trace()
        piece = self._piece
        d, V = cfg.d, cfg.vocab_size
        self.wte = nn.Parameter(torch.empty(V, d))  # (V, d)
        if cfg.positions == "learned":
            self.wpe = nn.Parameter(torch.empty(cfg.max_positions, d))  # (T_max, d)
        else:
            table = piece("posenc.sinusoidal", shape=lambda n, dim: (n, dim))(cfg.max_positions, d)
            self.register_buffer("wpe", (POSITION_STD * table).to(torch.float32))  # fixed, at the learned table's size
        attention = "attention.scaled_dot_product" if cfg.attention == "dense" else "flash.flash_attention"
        attend = piece(attention, shape=_attention_shape, grads=(0, 1, 2))
        norm = piece("layers.layernorm_backward", tensor=False)
        layer_norm = lambda x, w, b: _ManualLayerNorm.apply(x, w, b, norm)  # noqa: E731
        self.blocks = nn.ModuleList(
            self.parts["gpt.Block"](d, cfg.n_heads, causal=cfg.objective == "lm", attention=attend,
                                    layer_norm=layer_norm, dropout=cfg.dropout) for _ in range(cfg.n_layers))
        for block in self.blocks:
            block.register_forward_pre_hook(self._block_input)
            block.register_forward_hook(self._block_output)
        self.ln_f = nn.LayerNorm(d)
        self.head = None if cfg.tied else nn.Linear(d, V, bias=False)
        self.drop = nn.Dropout(cfg.dropout)
        self.layer_norm = layer_norm
        self.embed = piece("gpt.embed", shape=lambda ids, e, p: (*ids.shape, e.shape[1]), grads=(1, 2))
        self.checkpoint = piece("checkpoint.checkpoint_sequential", shape=lambda blocks, x, k: x.shape, grads=(1,))
        init_weights(self, seed)

    def _piece(self, feature: str, **kw) -> Piece:
        return Piece(feature, self.parts[feature], self.parts.sources[feature], self.trace, **kw)

    def _block_input(self, block, args):
        if self.trace.finite and torch.is_grad_enabled() and args[0].requires_grad:
            return (_GradCheck.apply(args[0], self._piece("gpt.Block"), "the gradient it returns for its input"),)
        return None

    def _block_output(self, block, args, out):
        problem = tensor_problem(out, args[0].shape, self.trace.finite)
        if problem:
            raise self._piece("gpt.Block").fail(f"output of block {list(self.blocks).index(block)}", problem)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # ids: (B, T)
        x = self.drop(self.embed(ids, self.wte, self.wpe))  # (B, T, d)
        if self.cfg.checkpoint_segments and torch.is_grad_enabled():
            x = self.checkpoint(list(self.blocks), x, self.cfg.checkpoint_segments)
        else:
            for block in self.blocks:
                x = block(x)
        x = self.layer_norm(x, self.ln_f.weight, self.ln_f.bias)
        return x @ self.wte.T if self.head is None else self.head(x)  # (B, T, V)

    def n_params(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


def init_weights(model: nn.Module, seed: int) -> None:
    """GPT-2's initialisation, by parameter name so that any module with the contract's names gets the same
    values: matrices N(0, 0.02) (the residual projections ``o`` and ``proj`` N(0, 0.02 / sqrt(2L)), the
    position table N(0, 0.01)), biases 0, layer-norm weights 1. Each parameter has its own generator, seeded
    by the seed and its name.

    The position rows start smaller than the token rows: at 0.02 they drown the token identity the first
    steps learn from. On the debug run (mean loss of the last 20 steps, seeds 0 and 1), learned positions
    at 0.02 end 13-17% above a model without positions and at 0.01 4-5% above; sinusoidal rows at full size
    (values up to 1) 24-27% above, scaled to 0.01 2-3%."""
    L = max(1, len(getattr(model, "blocks", [])))
    with torch.no_grad():
        for name, p in model.named_parameters():
            g = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * L) if name.endswith(("o.weight", "proj.weight")) else 0.02
                std = POSITION_STD if name == "wpe" else std
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * std)
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.fill_(1.0)


def param_count(cfg: Config) -> int:
    """12 d^2 L + 13 d L + 2 d + d V (+ d V untied) (+ T_max d learned positions): the lecture's
    12 d^2 L + 2 d V with biases, layer norms and positions added and the tied table counted once."""
    d, L, V = cfg.d, cfg.n_layers, cfg.vocab_size
    return (12 * d * d * L + 13 * d * L + 2 * d + d * V * (1 if cfg.tied else 2)
            + (cfg.max_positions * d if cfg.positions == "learned" else 0))


# ================================================================================================= data
@dataclass
class Data:
    """A tokenized corpus: training and validation ids (int64), the vocabulary size and the special ids."""

    train: torch.Tensor
    val: torch.Tensor
    vocab_size: int
    specials: dict
    chars: int  # characters of text behind the ids

    def key(self) -> tuple:
        """Equal for equal ids (a checksum of both splits): what a cache of runs on this data is keyed by."""
        return (self.vocab_size, len(self.train), len(self.val), zlib.crc32(self.train.numpy().tobytes()),
                zlib.crc32(self.val.numpy().tobytes()))


def corpus_path() -> Path:
    """tiny-shakespeare (1.1 MB, public domain; the corpus of char-rnn and nanoGPT), shipped with the suites."""
    from importlib.resources import files

    return Path(str(files("fmspec.suites").joinpath("data", "tinyshakespeare.txt")))


def read_corpus(path: str | os.PathLike, chars: int | None = None) -> str:
    """The UTF-8 text of ``path`` (its first ``chars`` characters); a missing, empty, binary or non-UTF-8
    file raises ValueError naming the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"data file {path} does not exist")
    raw = path.read_bytes()
    if not raw.strip():
        raise ValueError(f"data file {path} is empty")
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise ValueError(f"data file {path} is corrupt or not text: a NUL byte at offset {nul}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"data file {path} is corrupt or not UTF-8: {exc.reason} at byte {exc.start}") from None
    return text if chars is None else text[:chars]


def tokenize(text: str, vocab_size: int, parts: Parts | None = None, split: float = 0.9,
             specials: Sequence[str] = SPECIALS) -> Data:
    """Train the byte-level BPE on the first ``split`` of ``text`` (cut at a line end) and encode both parts.

    ``bpe.train`` refuses a ``vocab_size`` below its 256 bytes and the special tokens (ValueError)."""
    parts = parts or Parts.reference()
    cut = text.find("\n", int(len(text) * split)) + 1 or len(text)
    vocab, merges = parts["bpe.train"](text[:cut], vocab_size, list(specials))
    tok = parts["bpe.Tokenizer"](vocab, merges, list(specials))
    special_ids = {s: tok.encode(s) for s in specials}
    if any(len(ids) != 1 for ids in special_ids.values()):
        raise ValueError(f"the tokenizer does not encode each special token as one id: {special_ids}")
    ids = [torch.tensor(tok.encode(part), dtype=torch.int64) for part in (text[:cut], text[cut:])]
    return Data(ids[0], ids[1], len(vocab), {s: i[0] for s, i in special_ids.items()}, len(text))


def lm_batch(ids: torch.Tensor, batch: int, context: int, generator: torch.Generator) -> torch.Tensor:
    """``batch`` windows of ``context`` consecutive ids at random offsets: (B, T)."""
    start = torch.randint(len(ids) - context + 1, (batch,), generator=generator)
    return torch.stack([ids[s:s + context] for s in start.tolist()])


def mlm_batch(ids: torch.Tensor, batch: int, context: int, specials: dict, generator: torch.Generator) -> torch.Tensor:
    """[CLS] + ``context - 2`` consecutive ids + [SEP], ``batch`` of them: (B, T)."""
    body = lm_batch(ids, batch, context - 2, generator)
    cls = torch.full((batch, 1), specials["[CLS]"], dtype=torch.int64)
    sep = torch.full((batch, 1), specials["[SEP]"], dtype=torch.int64)
    return torch.cat([cls, body, sep], dim=1)


# ============================================================================================= training
@dataclass(frozen=True)
class TrainConfig:
    """The optimisation: steps, batch, AdamW, the schedule, clipping, precision, device."""

    steps: int = 200
    batch: int = 16
    max_lr: float = 3e-3
    min_lr: float = 3e-4
    warmup: int = 20
    weight_decay: float = 0.1
    betas: tuple = (0.9, 0.95)
    eps: float = 1e-8
    grad_clip: float = 1.0
    mask_p: float = 0.15  # the encoder's masking probability
    seed: int = 0
    dtype: torch.dtype = torch.float32  # parameters and activations (float64 for the exact comparisons)
    autocast: torch.dtype | None = None  # torch.bfloat16 on a GPU: mixed precision
    device: str = "cpu"
    eval_every: int = 0  # 0: no evaluation during training
    eval_batches: int = 8
    check: bool = True  # on a NaN or inf, replay the run with every value checked to name the piece behind it


@dataclass
class Result:
    losses: list  # training loss of every step (of that step's batch, before its update)
    lrs: list
    evals: list  # [{"step", "train_loss", "val_loss"}] at every eval_every steps and at the end
    seconds: float
    tokens: int
    pieces: dict  # {feature: source} of the pieces used
    model: GPT = field(repr=False)

    def summary(self) -> dict:
        last = self.evals[-1] if self.evals else {}
        return {"steps": len(self.losses), "first_loss": self.losses[0], "last_loss": self.losses[-1],
                "seconds": self.seconds, "tokens_per_s": self.tokens / self.seconds if self.seconds else None,
                "train_ppl": math.exp(last["train_loss"]) if last else None,
                "val_ppl": math.exp(last["val_loss"]) if last else None, "pieces": self.pieces}


class Progress:
    """A one-line progress bar on a terminal (redrawn at most 10 times a second); elsewhere only the final line."""

    def __init__(self, total: int, enabled: bool = True, stream=None):
        self.total, self.enabled, self.stream = total, enabled, stream or sys.stderr
        self.tty = enabled and getattr(self.stream, "isatty", lambda: False)()
        self.last = 0.0

    def update(self, step: int, loss: float, tokens_per_s: float) -> None:
        now = time.perf_counter()
        if self.tty and (now - self.last > 0.1 or step + 1 == self.total):
            done = int(30 * (step + 1) / self.total)
            self.stream.write(f"\r[{'#' * done}{'.' * (30 - done)}] {step + 1}/{self.total} loss {loss:.3f} "
                              f"{tokens_per_s / 1e3:.1f}k tok/s")
            self.stream.flush()
            self.last = now

    def close(self, result: "Result") -> None:
        if self.enabled:
            s = result.summary()
            self.stream.write(("\n" if self.tty else "") + f"gpt: {s['steps']} steps in {s['seconds']:.1f} s, loss "
                              f"{s['first_loss']:.3f} -> {s['last_loss']:.3f}, "
                              f"{s['tokens_per_s'] / 1e3:.1f}k tokens/s\n")
            self.stream.flush()


def _scalar_loss(piece: Piece, *args) -> torch.Tensor:
    loss = piece(*args)
    problem = tensor_problem(loss, (), piece.trace.finite)
    if problem:
        raise piece.fail("loss", problem)
    return loss


def _step_loss(model: GPT, data: Data, tcfg: TrainConfig, gen: torch.Generator, ids_stream: torch.Tensor) -> tuple:
    """One batch's loss, its token count: the decoder's next-token loss or the encoder's masked-LM loss."""
    cfg, dev = model.cfg, tcfg.device
    autocast = torch.autocast(device_type=torch.device(dev).type, dtype=tcfg.autocast,
                              enabled=tcfg.autocast is not None)
    if cfg.objective == "lm":
        ids = lm_batch(ids_stream, tcfg.batch, cfg.context, gen).to(dev)
        with autocast:
            return _scalar_loss(model._piece("gpt.lm_loss"), model(ids), ids), ids.numel()
    ids = mlm_batch(ids_stream, tcfg.batch, cfg.context, data.specials, gen).to(dev)
    mask_gen = torch.Generator(device=dev).manual_seed(int(torch.randint(2**62, (1,), generator=gen)))
    inputs, chosen = model._piece("gpt.mask_tokens", tensor=False)(
        ids, mask_id=data.specials["[MASK]"], vocab_size=data.vocab_size, special_ids=list(data.specials.values()),
        generator=mask_gen, p=tcfg.mask_p)
    with autocast:
        return _scalar_loss(model._piece("gpt.masked_lm_loss"), model(inputs), ids, chosen), ids.numel()


@torch.no_grad()
def evaluate(model: GPT, data: Data, tcfg: TrainConfig, ids_stream: torch.Tensor, seed: int = 1234) -> float:
    """Mean loss over ``tcfg.eval_batches`` batches drawn with a fixed seed, in eval mode (no dropout)."""
    was = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    losses = [_step_loss(model, data, tcfg, gen, ids_stream)[0].item() for _ in range(tcfg.eval_batches)]
    model.train(was)
    return sum(losses) / len(losses)


class _NonFinite(Exception):
    """A loss or gradient norm that is NaN or inf, seen by the fast pass: its step, what, and its value."""

    def __init__(self, step: int, what: str, value: float):
        super().__init__(f"{what} = {value} at step {step}")
        self.step, self.what, self.value = step, what, value


def train(cfg: Config, tcfg: TrainConfig, data: Data, parts: Parts | None = None, *, model: GPT | None = None,
          on_step: Callable[[int, float], None] | None = None, stop: Callable[[dict], bool] | None = None,
          progress: bool = False) -> Result:
    """Train ``model`` (default: a new ``GPT(cfg, parts)``) for ``tcfg.steps`` steps; a :class:`Result`.
    ``on_step(step, loss)`` is called after each step; ``stop(evaluation)`` after each evaluation ends the
    run early when true.

    Before the first step every piece is tried once on a full-length sequence (the preflight), so a bad
    configuration or a broken piece stops the run before any update. The optimizer covers every parameter
    of the model (those without a gradient, frozen by LoRA, are left alone by AdamW).

    Every piece's output shape is checked as the run goes. A loss or gradient norm that is NaN or inf
    stops it; then (``tcfg.check``) the run is replayed from the same start with every value checked
    (outputs, the gradients each piece returns, the parameters after each update), which names the piece
    that produced the first non-finite value: the run is deterministic, so the replay meets it at the same
    step. Checking every value costs a quarter of the run's time, so only the replay pays it.
    """
    parts = parts or Parts.reference()
    if cfg.vocab_size != data.vocab_size:
        raise ValueError(f"Config.vocab_size={cfg.vocab_size} differs from the tokenizer's {data.vocab_size}")
    if len(data.train) < cfg.context + 1 or len(data.val) < cfg.context:
        raise ValueError(f"the corpus is too short for context={cfg.context}: {len(data.train)} training and "
                         f"{len(data.val)} validation tokens")
    if tcfg.steps < 1 or tcfg.batch < 1 or not 0 <= tcfg.warmup <= tcfg.steps:
        raise ValueError(f"need steps >= 1, batch >= 1 and 0 <= warmup <= steps, got {tcfg}")
    if model is None:
        model = GPT(cfg, parts, seed=tcfg.seed)
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    try:
        return _run(model, tcfg, data, parts, on_step, stop, progress)
    except _NonFinite as bad:
        loss = "gpt.lm_loss" if cfg.objective == "lm" else "gpt.masked_lm_loss"
        model.trace.step, model.trace.phase = bad.step, "forward" if bad.what == "loss" else "optimizer step"
        why = "a checked replay found no piece behind it" if tcfg.check else "TrainConfig.check=False: not replayed"
        found = model._piece(loss if bad.what == "loss" else "gpt.clip_grad_norm").fail(
            bad.what, f"is not finite ({bad.value}); {why}")
        if not tcfg.check:
            raise found from None
    model.load_state_dict(initial)
    model.trace.finite = True
    try:
        _run(model, tcfg, data, parts, None, stop, False)
    finally:
        model.trace.finite = False
    raise found  # the checked replay did not meet it (a piece that is not deterministic)


def _run(model: GPT, tcfg: TrainConfig, data: Data, parts: Parts, on_step, stop, progress: bool) -> Result:
    cfg, dev, trace = model.cfg, torch.device(tcfg.device), model.trace
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(tcfg.seed)  # dropout
        model.to(device=dev, dtype=tcfg.dtype).train()
        decay = [p for p in model.parameters() if p.dim() >= 2]
        rest = [p for p in model.parameters() if p.dim() < 2]
        trace.step, trace.phase = "build", "optimizer"
        opt = model._piece("gpt.AdamW", tensor=False)(
            [{"params": decay, "weight_decay": tcfg.weight_decay}, {"params": rest, "weight_decay": 0.0}],
            lr=tcfg.max_lr, betas=tcfg.betas, eps=tcfg.eps, weight_decay=tcfg.weight_decay)
        schedule = model._piece("gpt.lr_schedule", tensor=False)
        clip = model._piece("gpt.clip_grad_norm", tensor=False)
        trace.step, trace.phase = "preflight", "forward"
        preflight = replace(tcfg, batch=1)
        _step_loss(model, data, preflight, torch.Generator().manual_seed(tcfg.seed), data.train)[0].backward()
        model.zero_grad(set_to_none=True)
        gen = torch.Generator().manual_seed(tcfg.seed)
        losses, lrs, evals, tokens = [], [], [], 0
        bar = Progress(tcfg.steps, enabled=progress)
        start = time.perf_counter()
        for step in range(tcfg.steps):
            trace.step, trace.phase = step, "learning rate"
            lr = schedule(step, max_lr=tcfg.max_lr, warmup=tcfg.warmup, total=tcfg.steps, min_lr=tcfg.min_lr)
            # max_lr (step + 1) / warmup may round one ulp above max_lr at the warmup's end (3e-3 at 6 / 6)
            if not (isinstance(lr, (int, float)) and 0 <= lr <= tcfg.max_lr * (1 + 4 * sys.float_info.epsilon)):
                raise schedule.fail("learning rate", f"is {lr!r}, outside [0, max_lr={tcfg.max_lr}]")
            for group in opt.param_groups:
                group["lr"] = lr
            trace.phase = "forward"
            loss, n = _step_loss(model, data, tcfg, gen, data.train)
            losses.append(loss.item())
            if not math.isfinite(losses[-1]):
                raise _NonFinite(step, "loss", losses[-1])
            trace.phase = "backward"
            opt.zero_grad(set_to_none=True)
            loss.backward()
            trace.phase = "optimizer step"
            norm = float(clip([p for p in model.parameters() if p.grad is not None], tcfg.grad_clip))
            if not math.isfinite(norm):
                raise _NonFinite(step, "gradient norm", norm)
            opt.step()
            if trace.finite:
                for name, p in model.named_parameters():
                    problem = tensor_problem(p)
                    if problem:
                        raise model._piece("gpt.AdamW").fail(f"parameter {name} after the update", problem)
            lrs.append(lr)
            tokens += n
            if on_step:
                on_step(step, losses[-1])
            bar.update(step, losses[-1], tokens / (time.perf_counter() - start))
            if tcfg.eval_every and ((step + 1) % tcfg.eval_every == 0 or step + 1 == tcfg.steps):
                trace.phase = "evaluation"
                evals.append({"step": step + 1, "seconds": time.perf_counter() - start,
                              "train_loss": evaluate(model, data, tcfg, data.train),
                              "val_loss": evaluate(model, data, tcfg, data.val)})
                if stop and stop(evals[-1]):
                    break
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        result = Result(losses, lrs, evals, time.perf_counter() - start, tokens,
                        parts.used(cfg, lora=bool(lora_layers(model))), model)
    bar.close(result)
    return result


def finetune_lora(model: GPT, data: Data, tcfg: TrainConfig, parts: Parts | None = None,
                  targets: Sequence[str] = ("q", "v"), r: int = 4, alpha: float = 8.0) -> Result:
    """Wrap ``targets`` of a (pretrained) model with ``lora.apply_lora`` and train: only A and B learn."""
    parts = parts or model.parts
    piece = model._piece("lora.apply_lora", tensor=False)
    model.trace.step = "build"
    piece(model, list(targets), r, alpha)
    return train(model.cfg, tcfg, data, parts, model=model)


def lora_layers(model: nn.Module) -> list:
    """The LoRA layers of ``model``: the modules with parameters ``A`` and ``B`` and a ``merge()``, in order."""
    return [m for m in model.modules() if isinstance(getattr(m, "A", None), nn.Parameter)
            and isinstance(getattr(m, "B", None), nn.Parameter) and callable(getattr(m, "merge", None))]


def merge_lora(model: nn.Module) -> int:
    """Fold every LoRA update into its base weight (``merge()`` of each LoRA layer); the count merged."""
    layers = lora_layers(model)
    for m in layers:
        m.merge()
    return len(layers)


def step_function(model: GPT, tcfg: TrainConfig, data: Data, seed: int = 0) -> Callable[[], torch.Tensor]:
    """One training step as a function, for timing: a batch drawn from the training split, forward (under
    ``tcfg.autocast``), backward, clipping, AdamW at ``tcfg.max_lr``. Returns the loss tensor without waiting
    for it (no host synchronisation beyond the batch's copy to the device)."""
    model.to(device=tcfg.device, dtype=tcfg.dtype).train()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = model.parts["gpt.AdamW"]([{"params": decay, "weight_decay": tcfg.weight_decay},
                                    {"params": rest, "weight_decay": 0.0}],
                                   lr=tcfg.max_lr, betas=tcfg.betas, eps=tcfg.eps, weight_decay=tcfg.weight_decay)
    clip, gen = model.parts["gpt.clip_grad_norm"], torch.Generator().manual_seed(seed)
    model.trace.step, model.trace.phase = "benchmark", "forward"

    def step() -> torch.Tensor:
        loss, _ = _step_loss(model, data, tcfg, gen, data.train)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        clip([p for p in model.parameters() if p.grad is not None], tcfg.grad_clip)
        opt.step()
        return loss.detach()

    return step


# ================================================================================================ modes
@dataclass(frozen=True)
class Mode:
    """A complete recipe: the slice of the corpus, the vocabulary, the model and the optimisation."""

    chars: int | None  # the first ``chars`` characters of the corpus (None: all of it)
    vocab_size: int
    model: Config
    train: TrainConfig
    epochs: float | None = None  # when set, steps = epochs x training tokens / (batch x context)


DEBUG = Mode(chars=40_000, vocab_size=512,
             model=Config(vocab_size=512, d=96, n_layers=2, n_heads=4, context=64, max_positions=64),
             train=TrainConfig(steps=100, batch=8, max_lr=3e-3, min_lr=3e-4, warmup=10))
RUN = Mode(chars=None, vocab_size=2048, epochs=50.0,
           model=Config(vocab_size=2048, d=256, n_layers=4, n_heads=8, context=256, max_positions=256, dropout=0.2),
           train=TrainConfig(steps=0, batch=64, max_lr=1e-3, min_lr=1e-4, warmup=100, eval_every=100,
                             eval_batches=16))


def steps_for(mode: Mode, data: Data) -> int:
    """The mode's steps: its own, or enough batches for ``mode.epochs`` passes over the training ids."""
    if mode.epochs is None:
        return mode.train.steps
    return max(1, math.ceil(mode.epochs * len(data.train) / (mode.train.batch * mode.model.context)))


def main(argv: list[str] | None = None) -> int:
    """``python -m fmspec.reference.gpt {debug,run} [--device cuda] [--steps N] [--out DIR]``."""
    import argparse
    import json

    ap = argparse.ArgumentParser(prog="python -m fmspec.reference.gpt", description=main.__doc__)
    ap.add_argument("mode", choices=["debug", "run"])
    ap.add_argument("--data", default=None, help="a UTF-8 text file (default: tiny-shakespeare)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=None, help="override the mode's number of steps")
    ap.add_argument("--out", default=None, help="folder for gpt-<mode>.json (summary and loss curve)")
    args = ap.parse_args(argv)
    mode = DEBUG if args.mode == "debug" else RUN
    data = tokenize(read_corpus(args.data or corpus_path(), mode.chars), mode.vocab_size)
    cuda = args.device.startswith("cuda")
    steps = args.steps or steps_for(mode, data)
    tcfg = replace(mode.train, steps=steps, warmup=min(mode.train.warmup, steps), device=args.device,
                   autocast=torch.bfloat16 if cuda else None, eval_every=min(mode.train.eval_every, steps))
    result = train(replace(mode.model, vocab_size=data.vocab_size), tcfg, data, progress=True)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        doc = {**result.summary(), "losses": result.losses, "evals": result.evals}
        (Path(args.out) / f"gpt-{args.mode}.json").write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
