"""lora: LoRALinear and apply_lora (spec: docs/spec/lora.md; reference: reference/lora.py).

Oracles: h = x W^T + b + (alpha / r) x A^T B^T evaluated in float64 from the weights the test set, its
gradients written out by hand (seed 002), and peft's LoRA layer given the same weights where installed.
"""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from torch import nn

from fmspec.suites import _lora_helpers as lh
from fmspec.suites._lora_helpers import lora_oracle, lora_terms, set_ab
from fmspec.suites import asserts as ah
from fmspec.suites import strategies as ss
from fmspec.suites import tolerances as tol

pytestmark = pytest.mark.component("lora")
LL, AL = "lora.LoRALinear", "lora.apply_lora"

DTYPES = [pytest.param(torch.float32, id="float32"), pytest.param(torch.float64, id="float64")]
layer_dims = st.tuples(ss.sizes(1, 12), ss.sizes(1, 12), ss.sizes(1, 6))  # in, out, r
alphas = st.sampled_from([1.0, 8.0, 16.0, 0.5])


# ---------------------------------------------------------------------------------------------- helpers
def make_base(n_in: int, n_out: int, seed: int, dtype: torch.dtype = torch.float64, bias: bool = True) -> nn.Linear:
    base = nn.Linear(n_in, n_out, bias=bias, dtype=dtype)
    with torch.no_grad():
        base.weight.copy_(ss.randn((n_out, n_in), seed))
        if bias:
            base.bias.copy_(ss.randn((n_out,), seed + 1))
    return base


def wrap(candidate, base: nn.Linear, r: int, alpha: float, **kw):
    """The candidate's LoRALinear around ``base``, after checking A and B have the contract's shapes."""
    where = ah.snippet(LL, f"Linear({base.in_features}, {base.out_features})", r, alpha, **kw)
    layer = candidate.lora.LoRALinear(base, r, alpha, **kw)
    ah.assert_tensor(layer.A, (r, base.in_features), base.weight.dtype, name="A", where=where)
    ah.assert_tensor(layer.B, (base.out_features, r), base.weight.dtype, name="B", where=where)
    return layer, where


def grad_terms(x: torch.Tensor, g: torch.Tensor, A: torch.Tensor, B: torch.Tensor, s: float) -> tuple[float, float]:
    """The largest sums of absolute terms behind dL/dA = s B^T G^T X and dL/dB = s G^T (X A^T), for
    ``assert_close(scale=)``: each gradient sums products that may cancel."""
    x, g = x.double().abs(), g.double().abs()
    return (s * B.abs().T @ g.T @ x).max().item(), (s * g.T @ (x @ A.abs().T)).max().item()


def trainable(module: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(n, p) for n, p in module.named_parameters() if p.requires_grad]


# ------------------------------------------------------------------------------------ worked examples
@pytest.mark.smoke
@pytest.mark.needs(LL)
def test_worked_example(candidate):
    """W = I, A = [[1, 2]], B = [[1], [0]], r = alpha = 1: h = x + B A x = [1, 1] + [3, 0] = [4, 1] for x = [1, 1];
    with r = 2, alpha = 1, A = [[1, 2], [0, 1]], B = [[1, 0], [1, 1]]: h = x + 0.5 · [3, 4] = [2.5, 3]."""
    for r, A, B, expected in [(1, [[1.0, 2.0]], [[1.0], [0.0]], [4.0, 1.0]),
                              (2, [[1.0, 2.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 1.0]], [2.5, 3.0])]:
        base = nn.Linear(2, 2, bias=False, dtype=torch.float64)
        with torch.no_grad():
            base.weight.copy_(torch.eye(2, dtype=torch.float64))
        layer, where = wrap(candidate, base, r, 1.0)
        with torch.no_grad():
            layer.A.copy_(torch.tensor(A, dtype=torch.float64))
            layer.B.copy_(torch.tensor(B, dtype=torch.float64))
        out = layer(torch.ones(1, 2, dtype=torch.float64))
        ah.assert_close(out, torch.tensor([expected], dtype=torch.float64), name="h", where=where)


@pytest.mark.smoke
@pytest.mark.needs(LL)
def test_trainable_count_worked_example(candidate):
    """The lecture's r(m + n): a 1024 x 1024 layer with r = 8 trains 8 · 2048 = 16,384 parameters, not 1,049,600."""
    base = nn.Linear(1024, 1024)
    layer, where = wrap(candidate, base, 8, 16.0)
    count = sum(p.numel() for _, p in trainable(layer))
    ah.assert_equal(count, 16_384, name="trainable parameters", where=where)


# ---------------------------------------------------------------------------------------- LoRALinear
@pytest.mark.smoke
@pytest.mark.needs(LL)
@pytest.mark.parametrize("dtype", DTYPES)
@given(dims=layer_dims, alpha=alphas, seed=ss.seeds(), bias=st.booleans())
@example(dims=(5, 4, 3), alpha=16.0, seed=0, bias=True)
def test_identity_at_init(candidate, dtype, dims, alpha, seed, bias):
    """B = 0 at initialisation, so the adapted layer computes exactly what the pretrained one did."""
    n_in, n_out, r = dims
    base = make_base(n_in, n_out, seed, dtype, bias)
    x = ss.randn((3, n_in), seed + 2, dtype)
    zeros_a, zeros_b = torch.zeros(r, n_in, dtype=torch.float64), torch.zeros(n_out, r, dtype=torch.float64)
    W, b = base.weight.detach().double(), None if base.bias is None else base.bias.detach().double()
    expected = lora_oracle(x, W, b, zeros_a, zeros_b, 0.0)
    baseline = base(x)
    layer, where = wrap(candidate, base, r, alpha)
    ah.assert_close(layer(x), expected, dtype=dtype, n=n_in, baseline=baseline,
                    scale=lora_terms(x, W, b, zeros_a, zeros_b, 0.0), name="h at init", where=where)


@pytest.mark.needs(LL)
@given(dims=layer_dims, alpha=alphas, seed=ss.seeds())
@example(dims=(5, 4, 3), alpha=16.0, seed=0)
def test_a_random_b_zero_at_init(candidate, dims, alpha, seed):
    """B starts at zero, A at random values (A = 0 too would leave both gradients zero forever)."""
    n_in, n_out, r = dims
    layer, where = wrap(candidate, make_base(n_in, n_out, seed), r, alpha)
    ah.assert_equal(layer.B.detach(), torch.zeros(n_out, r, dtype=torch.float64), name="B at init", where=where)
    assert bool((layer.A != 0).any()), f"A is all zeros at init [{where}]"
    assert not layer.merged, f"merged is {layer.merged!r} at init [{where}]"


@pytest.mark.needs(LL)
@pytest.mark.parametrize("dtype", DTYPES)
@given(dims=layer_dims, alpha=alphas, seed=ss.seeds(), bias=st.booleans(), batch=st.sampled_from([(), (2,), (2, 3)]))
@example(dims=(5, 4, 3), alpha=16.0, seed=0, bias=True, batch=(2,))
def test_matches_formula(candidate, dtype, dims, alpha, seed, bias, batch):
    """Oracle: h = x W^T + b + (alpha / r) x A^T B^T, for any leading batch dimensions."""
    n_in, n_out, r = dims
    base = make_base(n_in, n_out, seed, dtype, bias)
    W, b = base.weight.detach().double(), None if base.bias is None else base.bias.detach().double()
    x = ss.randn((*batch, n_in), seed + 2, dtype)
    layer, where = wrap(candidate, base, r, alpha)
    A, B = set_ab(layer, seed)
    expected = lora_oracle(x, W, b, A, B, alpha / r)
    ah.assert_close(layer(x), expected, dtype=dtype, n=n_in + r, scale=lora_terms(x, W, b, A, B, alpha / r), name="h",
                    where=where)


def merge_case(candidate, dtype, dims, alpha, seed):
    """A wrapped layer with drawn A and B, the base weight before any merge (float64) and the oracle output."""
    n_in, n_out, r = dims
    base = make_base(n_in, n_out, seed, dtype)
    W, b = base.weight.detach().double().clone(), base.bias.detach().double().clone()
    x = ss.randn((4, n_in), seed + 2, dtype)
    layer, where = wrap(candidate, base, r, alpha)
    A, B = set_ab(layer, seed)
    return base, W, x, layer, A, B, lora_oracle(x, W, b, A, B, alpha / r), where


@pytest.mark.needs(LL)
@pytest.mark.parametrize("dtype", DTYPES)
@given(dims=layer_dims, alpha=alphas, seed=ss.seeds())
@example(dims=(5, 4, 3), alpha=16.0, seed=0)
def test_merge_equals_unmerged(candidate, dtype, dims, alpha, seed):
    """After merge(), W holds W + (alpha / r) B A and the output is the same as before."""
    n_in, n_out, r = dims
    base, W, x, layer, A, B, expected, where = merge_case(candidate, dtype, dims, alpha, seed)
    layer.merge()
    assert layer.merged is True, f"merged = {layer.merged!r} after merge() [{where}]"
    # W + s B A may cancel: judged against the size of its terms
    ah.assert_close(base.weight.detach(), W + alpha / r * B @ A, dtype=dtype, n=r,
                    scale=(W.abs() + alpha / r * B.abs() @ A.abs()).max().item(), name="merged W", where=where)
    terms = lora_terms(x, W, base.bias.detach().double(), A, B, alpha / r)
    ah.assert_close(layer(x), expected, dtype=dtype, n=n_in + r, scale=terms, name="h after merge", where=where)


@pytest.mark.needs(LL)
@pytest.mark.parametrize("dtype", DTYPES)
@given(dims=layer_dims, alpha=alphas, seed=ss.seeds())
@example(dims=(5, 4, 3), alpha=16.0, seed=0)
def test_unmerge_restores_base(candidate, dtype, dims, alpha, seed):
    """merge() then unmerge(): W is back (up to rounding), merged is False, the output unchanged."""
    n_in, n_out, r = dims
    base, W, x, layer, A, B, expected, where = merge_case(candidate, dtype, dims, alpha, seed)
    layer.merge()
    layer.unmerge()
    assert layer.merged is False, f"merged = {layer.merged!r} after unmerge() [{where}]"
    # W + delta - delta loses the digits of W below delta's rounding error, whoever computes it: judged at the
    # scale of the larger of W and delta
    delta = alpha / r * B @ A
    ah.assert_close(base.weight, W, dtype=dtype, n=r + 2, scale=delta.abs().max().item(), name="W after unmerge",
                    where=where)
    terms = lora_terms(x, W, base.bias.detach().double(), A, B, alpha / r)
    ah.assert_close(layer(x), expected, dtype=dtype, n=n_in + r, scale=terms, name="h after unmerge", where=where)


@pytest.mark.needs(LL)
@given(dims=layer_dims, alpha=alphas, seed=ss.seeds())
@example(dims=(5, 4, 3), alpha=16.0, seed=0)
def test_merge_and_unmerge_are_idempotent(candidate, dims, alpha, seed):
    """A second merge() (or unmerge()) changes nothing: the update is never added or removed twice."""
    n_in, n_out, r = dims
    base = make_base(n_in, n_out, seed)
    W, b = base.weight.detach().clone(), base.bias.detach().clone()
    x = ss.randn((4, n_in), seed + 2)
    layer, where = wrap(candidate, base, r, alpha)
    A, B = set_ab(layer, seed)
    expected = lora_oracle(x, W, b, A, B, alpha / r)
    layer.merge()
    layer.merge()
    terms = lora_terms(x, W, b, A, B, alpha / r)
    ah.assert_close(layer(x), expected, n=n_in + r, scale=terms, name="h after merge(); merge()", where=where)
    layer.unmerge()
    layer.unmerge()
    ah.assert_close(base.weight, W.double(), dtype=torch.float64, n=r + 2, scale=(alpha / r * B @ A).abs().max().item(),
                    name="W after unmerge(); unmerge()", where=where)  # at the scale of W and the update (see above)
    ah.assert_close(layer(x), expected, n=n_in + r, scale=terms, name="h after unmerge(); unmerge()", where=where)


@pytest.mark.needs(LL)
@given(dims=layer_dims, alpha=alphas, seed=ss.seeds(), bias=st.booleans())
@example(dims=(5, 4, 3), alpha=16.0, seed=0, bias=True)
def test_only_a_and_b_train(candidate, dims, alpha, seed, bias):
    """The trainable parameters are exactly A and B; after backward the frozen W and b have no gradient."""
    n_in, n_out, r = dims
    base = make_base(n_in, n_out, seed, bias=bias)
    layer, where = wrap(candidate, base, r, alpha)
    set_ab(layer, seed)
    names = [n for n, _ in trainable(layer)]
    ids = {id(p) for _, p in trainable(layer)}
    assert ids == {id(layer.A), id(layer.B)}, f"trainable parameters are {names}, expected only A and B [{where}]"
    layer(ss.randn((3, n_in), seed + 2)).sum().backward()
    frozen = [n for n, p in layer.named_parameters() if id(p) not in ids and p.grad is not None]
    assert not frozen, f"frozen parameters received gradients: {frozen} [{where}]"
    assert layer.A.grad is not None and layer.B.grad is not None, f"A or B received no gradient [{where}]"


@pytest.mark.needs(LL)
@pytest.mark.parametrize("dtype", DTYPES)
@given(dims=layer_dims, alpha=alphas, seed=ss.seeds())
@example(dims=(5, 4, 3), alpha=16.0, seed=0)
def test_gradients_of_a_and_b(candidate, dtype, dims, alpha, seed):
    """Seed 002's LoRA gradients: for loss = sum(G ∘ h), dB = s G^T (X A^T), dA = s B^T G^T X, s = alpha / r."""
    n_in, n_out, r = dims
    base = make_base(n_in, n_out, seed, dtype)
    x, g = ss.randn((5, n_in), seed + 2, dtype), ss.randn((5, n_out), seed + 3, dtype)
    layer, where = wrap(candidate, base, r, alpha)
    A, B = set_ab(layer, seed)
    s = alpha / r
    x64, g64 = x.double(), g.double()
    grad_B, grad_A = s * g64.T @ (x64 @ A.T), s * B.T @ g64.T @ x64
    terms_A, terms_B = grad_terms(x, g, A, B, s)  # the size of the terms each gradient sums (they may cancel)
    (layer(x) * g).sum().backward()
    ah.assert_close(layer.B.grad, grad_B, dtype=dtype, n=5 * n_in, scale=terms_B, name="dL/dB", where=where)
    ah.assert_close(layer.A.grad, grad_A, dtype=dtype, n=5 * n_out, scale=terms_A, name="dL/dA", where=where)


@pytest.mark.needs(LL)
@given(dims=layer_dims, alpha=alphas, seed=ss.seeds())
@example(dims=(5, 4, 3), alpha=16.0, seed=0)
def test_trainable_count_is_r_times_m_plus_n(candidate, dims, alpha, seed):
    n_in, n_out, r = dims
    layer, where = wrap(candidate, make_base(n_in, n_out, seed), r, alpha)
    count = sum(p.numel() for _, p in trainable(layer))
    ah.assert_equal(count, r * (n_in + n_out), name="trainable parameters", where=where)


@pytest.mark.needs(LL)
@given(dims=layer_dims, alpha=alphas, seed=ss.seeds())
@example(dims=(5, 4, 3), alpha=16.0, seed=0)
def test_wrapping_leaves_base_weights_unchanged(candidate, dims, alpha, seed):
    n_in, n_out, r = dims
    base = make_base(n_in, n_out, seed)
    W, b = base.weight.detach().clone(), base.bias.detach().clone()
    layer, where = wrap(candidate, base, r, alpha)
    ah.assert_equal(layer.base.weight.detach() if hasattr(layer, "base") else base.weight.detach(), W,
                    name="base weight", where=where)
    ah.assert_equal(base.bias.detach(), b, name="base bias", where=where)


DROPOUT_ROWS = 16  # rows of x in the training check: each row draws its own dropout mask


def masked_rows(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, s: float) -> torch.Tensor:
    """For r = 1, the rows h - (x W^T + b) that dropout on the LoRA input can give, ``(rows, 2^in, out)``: row i
    with keep-mask m in {0, 1}^in is s · (A (m ⊙ x_i)) · B[:, 0], with s = alpha / (r (1 - p))."""
    n_in = x.shape[-1]
    masks = (torch.arange(2**n_in)[:, None] >> torch.arange(n_in)) & 1  # (2^in, in): every keep-mask
    coeff = s * (x[:, None, :] * masks.to(torch.float64)) @ a[0]  # (rows, 2^in): A (m ⊙ x_i)
    return coeff[..., None] * b[:, 0]  # (rows, 2^in, out)


@pytest.mark.needs(LL)
@given(dims=layer_dims, seed=ss.seeds())
@example(dims=(5, 4, 3), seed=0)
@example(dims=(1, 2, 1), seed=0)  # the smallest layer where the placement shows: one input, two outputs
@example(dims=(12, 12, 6), seed=1)  # the widest drawn
def test_dropout_only_on_lora_path(candidate, dims, seed):
    """Dropout acts on the LoRA input only: h = x W^T + b + s · (m ⊙ x / (1 - p)) A^T B^T, m a random keep-mask.

    In training at init (B = 0) the output is still the base's; in eval mode it is the formula without
    dropout. In training with B != 0 and r = 1, each row of h - (x W^T + b) is c_i · B[:, 0] with
    c_i = s / (1 - p) · A (m_i ⊙ x_i) for one of the 2^in keep-masks m_i: a multiple of B's one column
    (dropout on the path's output, elementwise after B, scales each entry of a row by its own 0 or
    1 / (1 - p), off B's direction), by a masked sum of A x_i rescaled by 1 / (1 - p) (a mask without the
    rescaling gives c_i / 2 at p = 0.5)."""
    n_in, n_out, r = dims
    base = make_base(n_in, n_out, seed)
    W, b = base.weight.detach().clone(), base.bias.detach().clone()
    x = ss.randn((6, n_in), seed + 2)
    layer, where = wrap(candidate, base, r, 4.0, dropout=0.5)
    layer.train()
    zeros_a, zeros_b = torch.zeros(r, n_in, dtype=torch.float64), torch.zeros(n_out, r, dtype=torch.float64)
    at_init = lora_terms(x, W, b, zeros_a, zeros_b, 0.0)
    ah.assert_close(layer(x), lora_oracle(x, W, b, zeros_a, zeros_b, 0.0), n=n_in, scale=at_init,
                    name="h in training at init", where=where)
    A, B = set_ab(layer, seed)
    layer.eval()
    ah.assert_close(layer(x), lora_oracle(x, W, b, A, B, 4.0 / r), n=n_in + r, scale=lora_terms(x, W, b, A, B, 4.0 / r),
                    name="h in eval mode", where=where)

    # training, B != 0, r = 1; two outputs at least (with one, every row is a multiple of B wherever dropout acts)
    base = make_base(n_in, max(n_out, 2), seed + 20)
    W, b = base.weight.detach().clone(), base.bias.detach().clone()
    x = ss.randn((DROPOUT_ROWS, n_in), seed + 21)
    layer, where = wrap(candidate, base, 1, 4.0, dropout=0.5)
    A, B = set_ab(layer, seed + 20)
    layer.train()
    with torch.random.fork_rng(devices=[]):  # the masks are the candidate's; seeded for a reproducible failure
        torch.manual_seed(seed)
        h = layer(x).detach()
    s = 4.0 / (1 - 0.5)
    rows = masked_rows(x, A, B, s)  # (rows, 2^in, out)
    # (rows,): each row's distance to the nearest row dropout on the input can give; h - (x W^T + b) is a
    # difference, judged against the size of the terms of h (the formula at absolute values)
    err = ((h - (x @ W.T + b))[:, None, :] - rows).abs().amax(-1).amin(-1)
    bound = tol.rounding_floor(torch.float64, n_in + 1) * lora_terms(x, W, b, A, B, s)
    ah.assert_within(err, torch.full_like(err, bound), name="rows of h - (x W^T + b) in training: distance to the "
                     "nearest s / (1 - p) · A (m ⊙ x_i) · B", where=f"{where} with A, B set, train mode, r = 1")


# case -> (base, r, keyword arguments, the argument the error must name)
BAD_LAYER_ARGS = {
    "r-zero": (nn.Linear, 0, {}, "r"),
    "r-negative": (nn.Linear, -1, {}, "r"),
    "r-float": (nn.Linear, 2.5, {}, "r"),
    "not-linear": (lambda: nn.Conv2d(4, 4, 1), 2, {}, "base"),
    "dropout-one": (nn.Linear, 2, {"dropout": 1.5}, "dropout"),
}


@pytest.mark.needs(LL)
@pytest.mark.parametrize("case", list(BAD_LAYER_ARGS))
def test_bad_arguments_raise_value_error(candidate, case):
    """r not an int >= 1, dropout outside [0, 1): ValueError; base not an nn.Linear: TypeError (or ValueError);
    the message names the argument."""
    make, r, kw, argument = BAD_LAYER_ARGS[case]
    base = make(4, 4) if make is nn.Linear else make()
    with pytest.raises((ValueError, TypeError), match=rf"\b{argument}\b"):
        candidate.lora.LoRALinear(base, r, 8.0, **kw)


@pytest.mark.needs(LL)
def test_agrees_with_peft(candidate):
    """Trusted library: peft's LoRA Linear with the same W, b, A, B gives the same output, merged output
    and gradients of A and B."""
    peft_lora = pytest.importorskip("peft.tuners.lora", reason="peft is not installed (pip install fmspec[peers])")
    for n_in, n_out, r, alpha, seed in [(6, 4, 2, 16.0, 0), (5, 9, 3, 1.0, 1), (8, 8, 1, 4.0, 2)]:
        base = make_base(n_in, n_out, seed)
        x, g = ss.randn((3, n_in), seed + 2), ss.randn((3, n_out), seed + 3)
        config = peft_lora.LoraConfig(r=r, lora_alpha=alpha)
        theirs = peft_lora.layer.Linear(copy.deepcopy(base), "default", config=config, r=r, lora_alpha=alpha)
        theirs.base_layer.requires_grad_(False)
        ours, where = wrap(candidate, base, r, alpha)
        A, B = set_ab(ours, seed)
        with torch.no_grad():
            theirs.lora_A["default"].weight.copy_(A)
            theirs.lora_B["default"].weight.copy_(B)
        expected = theirs(x)
        (expected * g).sum().backward()
        terms = lora_terms(x, base.weight.detach(), base.bias.detach(), A, B, alpha / r)  # h may cancel (see above)
        ah.assert_close(ours(x), expected.detach(), n=n_in + r, scale=terms, name="h vs peft", where=where)
        (ours(x) * g).sum().backward()
        terms_A, terms_B = grad_terms(x, g, A, B, alpha / r)
        ah.assert_close(ours.A.grad, theirs.lora_A["default"].weight.grad, n=3 * n_out, scale=terms_A,
                        name="dL/dA vs peft", where=where)
        ah.assert_close(ours.B.grad, theirs.lora_B["default"].weight.grad, n=3 * n_in, scale=terms_B,
                        name="dL/dB vs peft", where=where)
        ours.merge()
        theirs.merge()
        ah.assert_close(ours(x), theirs(x).detach(), n=n_in + r, scale=terms, name="merged h vs peft", where=where)


# ----------------------------------------------------------------------------------------- apply_lora
# targets, the module names they must wrap, and (in, out) of each
TARGET_CASES = [
    (("q", "v"), {"attn.q": (6, 6), "attn.v": (6, 6)}),
    (("attn.k", "mlp.2"), {"attn.k": (6, 6), "mlp.2": (12, 6)}),
    (("fq", "0"), {"fq": (6, 6), "mlp.0": (6, 12)}),
]


def toy(seed: int) -> nn.Module:
    """The toy model (``_lora_helpers.Toy``) at d = 6."""
    return lh.toy(seed, d=6)


@pytest.mark.needs(AL)
@given(case=st.sampled_from(TARGET_CASES), r=ss.sizes(1, 4), alpha=alphas, seed=ss.seeds())
@example(case=TARGET_CASES[0], r=2, alpha=16.0, seed=0)
def test_apply_lora_identity_at_init(candidate, case, r, alpha, seed):
    targets, _ = case
    model = toy(seed % 1000)
    x = ss.randn((2, 3, 6), seed)
    with torch.no_grad():
        expected = model(x)
    out_model = candidate.lora.apply_lora(model, list(targets), r, alpha)
    ah.assert_close(out_model(x).detach(), expected, n=12, name="model output at init",
                    where=ah.snippet(AL, "Toy()", list(targets), r, alpha))


@pytest.mark.needs(AL)
@pytest.mark.parametrize("targets,wrapped", TARGET_CASES, ids=["q-v", "k-mlp2", "fq-mlp0"])
@given(r=ss.sizes(1, 4), alpha=alphas)
@example(r=2, alpha=16.0)
def test_apply_lora_wraps_only_targets(candidate, targets, wrapped, r, alpha):
    """The named Linear layers (matched by full name or "." + suffix) get A and B; the count of trainable
    parameters is the sum of r(in + out) over them; everything else (k, fq, the norm, ...) is frozen."""
    where = ah.snippet(AL, "Toy()", list(targets), r, alpha)
    model = candidate.lora.apply_lora(toy(0), list(targets), r, alpha)
    for name, (n_in, n_out) in wrapped.items():
        module = model.get_submodule(name)
        ah.assert_tensor(getattr(module, "A", None), (r, n_in), name=f"{name}.A", where=where)
        ah.assert_tensor(getattr(module, "B", None), (n_out, r), name=f"{name}.B", where=where)
    for name in ("attn.q", "attn.k", "attn.v", "fq", "mlp.0", "mlp.2"):
        if name not in wrapped:
            assert not hasattr(model.get_submodule(name), "A"), f"{name} was wrapped but is no target [{where}]"
    count = sum(p.numel() for _, p in trainable(model))
    ah.assert_equal(count, sum(r * (i + o) for i, o in wrapped.values()), name="trainable parameters", where=where)
    lora_ids = {id(p) for name in wrapped for p in (model.get_submodule(name).A, model.get_submodule(name).B)}
    others = [n for n, p in trainable(model) if id(p) not in lora_ids]
    assert not others, f"parameters other than the LoRA A and B train: {others} [{where}]"


@pytest.mark.needs(AL)
@pytest.mark.parametrize("targets", [["nope"], ["q", "nope"], ["norm"]], ids=["unknown", "one-unknown", "not-linear"])
def test_apply_lora_bad_targets_raise(candidate, targets):
    """A target matching no module, or a module that is no nn.Linear: ValueError (or TypeError) naming targets (or
    "target", the one at fault)."""
    with pytest.raises((ValueError, TypeError), match=r"\btargets?\b"):
        candidate.lora.apply_lora(toy(0), targets, 2, 4.0)


@pytest.mark.needs(AL)
def test_apply_lora_agrees_with_peft(candidate):
    """Trusted library: peft's inject_adapter_in_model with the same targets trains the same number of
    parameters, and with our A and B copied in computes the same output."""
    peft = pytest.importorskip("peft", reason="peft is not installed (pip install fmspec[peers])")
    for targets, wrapped in TARGET_CASES:
        where = ah.snippet(AL, "Toy()", list(targets), 2, 8.0)
        ours = candidate.lora.apply_lora(toy(0), list(targets), 2, 8.0)
        theirs = peft.inject_adapter_in_model(peft.LoraConfig(r=2, lora_alpha=8.0, target_modules=list(targets)), toy(0))
        ah.assert_equal(sum(p.numel() for _, p in trainable(ours)), sum(p.numel() for _, p in trainable(theirs)),
                        name="trainable parameters vs peft", where=where)
        for i, name in enumerate(wrapped):
            A = ss.randn(tuple(ours.get_submodule(name).A.shape), i)
            B = ss.randn(tuple(ours.get_submodule(name).B.shape), i + 100)
            with torch.no_grad():
                ours.get_submodule(name).A.copy_(A)
                ours.get_submodule(name).B.copy_(B)
                theirs.get_submodule(name).lora_A["default"].weight.copy_(A)
                theirs.get_submodule(name).lora_B["default"].weight.copy_(B)
        x = ss.randn((2, 3, 6), 5)
        ah.assert_close(ours(x).detach(), theirs(x).detach(), n=24, name="model output vs peft", where=where)
