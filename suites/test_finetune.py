"""finetune: bottleneck adapters and QLoRA (spec: docs/spec/finetune.md; reference: reference/finetune.py).

Oracles: the adapter formula h = x + f(x W_downᵀ + b_down) W_upᵀ + b_up in float64, written out here (peft
has no bottleneck adapters); for QLoRA, h = x dequant(W_q)ᵀ + b + (alpha / r) x Aᵀ Bᵀ in float64, where
dequant(W_q) is read from the candidate's own buffers and dequantized by the quant reference
(``_finetune_helpers``), the stored state itself judged against the weight it quantized, and peft's LoRA
layer around the same dequantized weight where peft is installed.
"""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from torch import nn

from fmspec.suites import _finetune_helpers as fth
from fmspec.suites import asserts as ah
from fmspec.suites import strategies as ss
from fmspec.suites import tolerances as tol

pytestmark = pytest.mark.component("finetune")
AD, IA, QL, AQ = fth.AD, fth.IA, fth.QL, fth.AQ

DTYPES = [pytest.param(torch.float32, id="float32"), pytest.param(torch.float64, id="float64")]
QUANTS = [pytest.param(q, id=q) for q in fth.QUANTS]
activations = st.sampled_from(sorted(fth.ACTIVATIONS))
adapter_dims = st.tuples(ss.sizes(1, 12), ss.sizes(1, 6))  # d, bottleneck
batches = st.sampled_from([(), (2,), (2, 3)])
alphas = st.sampled_from([1.0, 8.0, 16.0, 0.5])
magnitudes = st.sampled_from([1e-3, 1.0, 300.0])


def _with_block(dims: tuple[int, int, int]) -> st.SearchStrategy[tuple[int, int, int, int]]:
    n_in, n_out, r = dims
    n = n_in * n_out
    return st.sampled_from([b for b in range(1, n + 1) if n % b == 0]).map(lambda b: (n_in, n_out, r, b))


qlora_dims = st.tuples(ss.sizes(1, 12), ss.sizes(1, 12), ss.sizes(1, 4)).flatmap(_with_block)  # in, out, r, block
SMALL = (8, 6, 2, 16)  # in, out, r, block_size: three blocks
MANY_BLOCKS = (64, 33, 2, 8)  # 264 blocks: NF4's block constants span two double-quantization blocks
# shapes random draws meet rarely: an odd number of weights (NF4's last byte holds one code), one block for
# the whole weight, one block per weight, r above both in and out
EDGE_DIMS = [(5, 3, 2, 5), (3, 2, 1, 6), (4, 3, 2, 1), (2, 3, 4, 2)]


def edge_examples(**rest):
    """The test with an explicit example for each of :data:`EDGE_DIMS`, the other arguments ``rest``."""
    def add(test):
        for dims in EDGE_DIMS:
            test = example(dims=dims, **rest)(test)
        return test
    return add


# ================================================================================================ adapters
@pytest.mark.smoke
@pytest.mark.needs(AD)
def test_adapter_worked_example(candidate):
    """d = 2, m = 1, relu: W_down = [[1, -1]], b_down = [0.5], W_up = [[2], [-1]], b_up = [0, 1];
    x = [3, 1] -> 2.5 -> relu 2.5 -> [5, -1.5] -> h = [8, -0.5];  x = [1, 3] -> -1.5 -> relu 0 -> h = [1, 4].
    BERT-base (d = 768) with m = 64 trains 2·768·64 + 768 + 64 = 99,136 parameters per adapter."""
    where = ah.snippet(AD, 2, 1, "relu", dtype=torch.float64)
    adapter = candidate.finetune.Adapter(2, 1, "relu", dtype=torch.float64)
    with torch.no_grad():
        adapter.down.weight.copy_(torch.tensor([[1.0, -1.0]]))
        adapter.down.bias.copy_(torch.tensor([0.5]))
        adapter.up.weight.copy_(torch.tensor([[2.0], [-1.0]]))
        adapter.up.bias.copy_(torch.tensor([0.0, 1.0]))
    out = adapter(torch.tensor([[3.0, 1.0], [1.0, 3.0]], dtype=torch.float64))
    ah.assert_close(out, torch.tensor([[8.0, -0.5], [1.0, 4.0]], dtype=torch.float64), name="h", where=where)
    count = sum(p.numel() for _, p in fth.trainable(candidate.finetune.Adapter(768, 64)))
    ah.assert_equal(count, 99_136, name="trainable parameters", where=ah.snippet(AD, 768, 64))


@pytest.mark.smoke
@pytest.mark.needs(AD)
@pytest.mark.parametrize("dtype", DTYPES)
@given(dims=adapter_dims, activation=activations, seed=ss.seeds(), batch=batches)
@example(dims=(6, 3), activation="gelu", seed=0, batch=(2,))
@example(dims=(1, 1), activation="tanh", seed=1, batch=())  # no batch dimension, widths 1
def test_adapter_identity_at_init(candidate, dtype, dims, activation, seed, batch):
    """W_up and b_up start at zero, W_down at random values: h = x exactly at initialisation."""
    d, m = dims
    where = ah.snippet(AD, d, m, activation, dtype=dtype)
    adapter = candidate.finetune.Adapter(d, m, activation, dtype=dtype)
    ah.assert_tensor(adapter.down.weight, (m, d), dtype, name="down.weight", where=where)
    ah.assert_tensor(adapter.up.weight, (d, m), dtype, name="up.weight", where=where)
    x = ss.randn((*batch, d), seed, dtype)
    ah.assert_close(adapter(x), x.double(), dtype=dtype, name="h at init", where=where)
    ah.assert_equal(adapter.up.weight.detach(), torch.zeros(d, m, dtype=dtype), name="up.weight at init", where=where)
    ah.assert_equal(adapter.up.bias.detach(), torch.zeros(d, dtype=dtype), name="up.bias at init", where=where)
    assert bool((adapter.down.weight != 0).any()), f"down.weight is all zeros at init [{where}]"


@pytest.mark.needs(AD)
@pytest.mark.parametrize("dtype", DTYPES)
@given(dims=adapter_dims, activation=activations, seed=ss.seeds(), batch=batches)
@example(dims=(6, 3), activation="relu", seed=0, batch=(2,))
@example(dims=(1, 1), activation="gelu", seed=1, batch=())
@example(dims=(3, 6), activation="tanh", seed=2, batch=(2, 3))  # a bottleneck wider than d
def test_adapter_matches_formula(candidate, dtype, dims, activation, seed, batch):
    """Oracle: h = x + f(x W_downᵀ + b_down) W_upᵀ + b_up in float64, for any leading batch dimensions."""
    d, m = dims
    where = ah.snippet(AD, d, m, activation, dtype=dtype)
    adapter = candidate.finetune.Adapter(d, m, activation, dtype=dtype)
    weights = fth.adapter_weights(adapter, seed)
    x = ss.randn((*batch, d), seed + 1, dtype)
    ah.assert_close(adapter(x), fth.adapter_oracle(x, *weights, activation), dtype=dtype, n=d + m,
                    scale=fth.adapter_terms(x, *weights), name="h", where=where)


@pytest.mark.needs(AD)
@given(dims=adapter_dims, activation=activations)
@example(dims=(6, 3), activation="gelu")
@example(dims=(1, 1), activation="relu")
def test_adapter_trainable_count(candidate, dims, activation):
    """2·d·m + d + m parameters (both projections with their biases), all of them trainable."""
    d, m = dims
    where = ah.snippet(AD, d, m, activation)
    adapter = candidate.finetune.Adapter(d, m, activation)
    ah.assert_equal(sum(p.numel() for _, p in fth.trainable(adapter)), 2 * d * m + d + m,
                    name="trainable parameters", where=where)
    frozen = [n for n, p in adapter.named_parameters() if not p.requires_grad]
    assert not frozen, f"adapter parameters are frozen: {frozen} [{where}]"


ADAPTER_BAD = [("bottleneck-zero", dict(bottleneck=0), "bottleneck"),
               ("bottleneck-negative", dict(bottleneck=-1), "bottleneck"),
               ("bottleneck-float", dict(bottleneck=2.5), "bottleneck"),
               ("d-zero", dict(d=0), "d"),
               ("activation-unknown", dict(activation="swish"), "activation")]


@pytest.mark.needs(AD)
@pytest.mark.parametrize("change,argument", [c[1:] for c in ADAPTER_BAD], ids=[c[0] for c in ADAPTER_BAD])
def test_adapter_bad_arguments_raise(candidate, change, argument):
    """d or bottleneck not an int >= 1, an unknown activation name: ValueError or TypeError naming the argument."""
    kw = {"d": 4, "bottleneck": 2, "activation": "relu", **change}
    with fth.raises_naming(argument):
        candidate.finetune.Adapter(kw["d"], kw["bottleneck"], kw["activation"])


# ---------------------------------------------------------------------------------------- insert_adapters
def adapted(candidate, targets, m, activation, seed: int = 0):
    """A toy model, its untouched float64 copy and the candidate's adapted model (the toy, changed)."""
    model = fth.toy(seed)
    original = copy.deepcopy(model)
    layers = fth.toy_layers(model)
    out = candidate.finetune.insert_adapters(model, list(targets), m, activation)
    return original, layers, out, ah.snippet(IA, "Toy()", list(targets), m, activation)


@pytest.mark.needs(IA)
@given(case=st.sampled_from(fth.TARGET_CASES), m=ss.sizes(1, 4), activation=activations, seed=ss.seeds())
@example(case=fth.TARGET_CASES[0], m=2, activation="gelu", seed=0)
def test_insert_adapters_identity_at_init(candidate, case, m, activation, seed):
    """Right after insert_adapters the model computes what the pretrained one did."""
    original, _, model, where = adapted(candidate, case[0], m, activation, seed % 1000)
    x = ss.randn((2, 3, 8), seed)
    with torch.no_grad():
        expected = original(x)
    ah.assert_close(model(x).detach(), expected, n=32, name="model output at init", where=where)


@pytest.mark.needs(IA)
@pytest.mark.parametrize("targets,wrapped", fth.TARGET_CASES, ids=["q-v", "k-mlp2", "fq-mlp0"])
@given(m=ss.sizes(1, 4), activation=activations)
@example(m=2, activation="relu")
def test_insert_adapters_only_adapters_train(candidate, targets, wrapped, m, activation):
    """Each named Linear (full name or "." + suffix) becomes .base (the same layer object) followed by .adapter
    (an Adapter of width out_features); the trainable parameters are the adapters', Σ 2·d·m + d + m of them;
    after backward every other parameter is still without a gradient."""
    _, layers, model, where = adapted(candidate, targets, m, activation)
    adapter_ids = set()
    for name, (_, n_out) in wrapped.items():
        module = model.get_submodule(name)
        assert getattr(module, "base", None) is layers[name], f"{name}.base is not the original layer [{where}]"
        adapter = getattr(module, "adapter", None)
        assert isinstance(adapter, candidate.finetune.Adapter), f"{name}.adapter is {ah.describe(adapter)} [{where}]"
        ah.assert_tensor(adapter.up.weight, (n_out, m), name=f"{name}.adapter.up.weight", where=where)
        adapter_ids |= {id(p) for p in adapter.parameters()}
    fth.assert_only_targets_replaced(model, layers, wrapped, where)
    count = sum(p.numel() for _, p in fth.trainable(model))
    ah.assert_equal(count, sum(2 * o * m + o + m for _, o in wrapped.values()), name="trainable parameters",
                    where=where)
    fth.assert_only_these_train(model, adapter_ids, "the adapters'", where)
    model(ss.randn((2, 8), 1)).sum().backward()
    graded = [n for n, p in model.named_parameters() if id(p) not in adapter_ids and p.grad is not None]
    assert not graded, f"frozen parameters received gradients: {graded} [{where}]"


@pytest.mark.needs(IA)
@given(case=st.sampled_from(fth.TARGET_CASES), m=ss.sizes(1, 4), activation=activations, seed=ss.seeds())
@example(case=fth.TARGET_CASES[1], m=3, activation="tanh", seed=0)
def test_insert_adapters_matches_formula(candidate, case, m, activation, seed):
    """Oracle: the pretrained model (float64) with each target's output y replaced by the adapter formula
    y + f(y W_downᵀ + b_down) W_upᵀ + b_up, given the adapters' (trained) weights."""
    targets, wrapped = case
    original, _, model, where = adapted(candidate, targets, m, activation)
    for i, name in enumerate(wrapped):
        weights = fth.adapter_weights(model.get_submodule(name).adapter, seed + 100 * i)
        original.get_submodule(name).register_forward_hook(
            lambda mod, args, out, w=weights: fth.adapter_oracle(out, *w, activation))
    x = ss.randn((2, 3, 8), seed)
    with torch.no_grad():
        expected = original(x)
    ah.assert_close(model(x).detach(), expected, n=64, name="model output", where=where)


INSERT_BAD = [*[(t, 2, "after", i) for t, i in zip(fth.BAD_TARGETS, fth.BAD_TARGET_IDS)],
              (["q"], 0, "bottleneck", "bottleneck-zero")]


@pytest.mark.needs(IA)
@pytest.mark.parametrize("after,m,argument", [c[:3] for c in INSERT_BAD], ids=[c[3] for c in INSERT_BAD])
def test_insert_adapters_bad_targets_raise(candidate, after, m, argument):
    """A name matching no module (alone or among known ones), a non-Linear target, a bottleneck of 0: an error
    naming the argument, and the model left as it was (nothing frozen, nothing replaced)."""
    model = fth.toy(0)
    with fth.raises_naming(argument):
        candidate.finetune.insert_adapters(model, after, m, "relu")
    fth.assert_toy_untouched(model, "insert_adapters")


# =================================================================================================== QLoRA
@pytest.mark.smoke
@pytest.mark.needs(QL)
def test_qlora_worked_example(candidate):
    """The lecture's X_int8 = round(127 / absmax · X), in blocks of 4 (here a block is a row):
    W = [[1, -2.5, 0.3, 4], [0.2, -0.6, 1, 0.05]] -> c = [31.75, 127] -> W_q = [[32, -79, 10, 127], [25, -76, 127, 6]];
    with A = [[1, 0, 0, 1]], B = [[1], [-1]], r = alpha = 1 and x = [1, 1, 1, 1]:
    h = dequant(W_q) x + B A x = [360/127 + 2, 82/127 - 2] (the unquantized W would give [4.8, -1.35]);
    merge(): W' = dequant(W_q) + B A. Floats are judged at the float32 precision of the stored steps."""
    base = nn.Linear(4, 2, bias=False, dtype=torch.float64)
    with torch.no_grad():
        base.weight.copy_(torch.tensor([[1.0, -2.5, 0.3, 4.0], [0.2, -0.6, 1.0, 0.05]]))
    layer, where = fth.qlora(candidate, base, 1, 1.0, "int8-block", 4)
    state = fth.read_state(layer, "int8-block", 2, 4, 4, where)
    codes = torch.tensor([[32, -79, 10, 127], [25, -76, 127, 6]], dtype=torch.int8)
    ah.assert_equal(state["weight_q"], codes, name="weight_q", where=where)
    steps = torch.tensor([4.0, 1.0], dtype=torch.float64) / 127
    ah.assert_close(state["weight_scale"], steps, dtype=torch.float32, name="weight_scale", where=where)
    with torch.no_grad():
        layer.A.copy_(torch.tensor([[1.0, 0.0, 0.0, 1.0]]))
        layer.B.copy_(torch.tensor([[1.0], [-1.0]]))
    x = torch.ones(1, 4, dtype=torch.float64)
    h = torch.tensor([[360 / 127 + 2, 82 / 127 - 2]], dtype=torch.float64)
    W, A, B = codes.double() * steps[:, None], layer.A.detach().double(), layer.B.detach().double()
    terms = fth.lora_terms(x, W, None, A, B, 1.0)  # 9.81 and 3.84: h's 82/127 - 2 sums terms of 3.84
    ah.assert_close(layer(x), h, dtype=torch.float32, scale=terms, name="h", where=where)
    merged = layer.merge()
    W_merged = W + torch.tensor([[1.0, 0, 0, 1], [-1, 0, 0, -1]], dtype=torch.float64)
    ah.assert_close(merged.weight, W_merged, dtype=torch.float32, scale=fth.merged_terms(W, A, B, 1.0),
                    name="merged weight", where=where)
    ah.assert_close(merged(x), h, dtype=torch.float32, scale=terms, name="merged h", where=where)


@pytest.mark.smoke
@pytest.mark.needs(QL)
def test_qlora_nf4_worked_example(candidate):
    """NF4 in blocks of 4: W = [[1, -0.5, 0.25, 0], [3, -3, 1.5, 0.3]], absmax [1, 3]; W / absmax rounds to the
    levels 1, -0.5251, 0.2461, 0 | 1, -1, 0.4407, 0.0796: codes 15, 2, 10, 7 | 15, 0, 12, 8, packed high nibble
    first into bytes [242, 167, 240, 200]; the constants minus their mean 2 are [-1, 1] -> int8 [-127, 127],
    step 1/127. With A = [[1, 0, 0, 1]], B = [[1], [-1]], x = [1, 1, 1, 1]:
    h = [1 - 0.52507 + 0.24611 + 2, 3 · (0.44071 + 0.07958) - 2] = [2.72104, -0.43913]."""
    base = nn.Linear(4, 2, bias=False, dtype=torch.float64)
    with torch.no_grad():
        base.weight.copy_(torch.tensor([[1.0, -0.5, 0.25, 0.0], [3.0, -3.0, 1.5, 0.3]]))
    layer, where = fth.qlora(candidate, base, 1, 1.0, "nf4", 4)
    state = fth.read_state(layer, "nf4", 2, 4, 4, where)
    ah.assert_equal(state["weight_packed"], torch.tensor([242, 167, 240, 200], dtype=torch.uint8),
                    name="weight_packed", where=where)
    ah.assert_equal(state["absmax_q"], torch.tensor([-127, 127], dtype=torch.int8), name="absmax_q", where=where)
    ah.assert_close(state["absmax_scale"], torch.tensor([1 / 127], dtype=torch.float64), dtype=torch.float32,
                    name="absmax_scale", where=where)
    ah.assert_close(state["absmax_mean"], torch.tensor(2.0, dtype=torch.float64), dtype=torch.float32,
                    name="absmax_mean", where=where)
    with torch.no_grad():
        layer.A.copy_(torch.tensor([[1.0, 0.0, 0.0, 1.0]]))
        layer.B.copy_(torch.tensor([[1.0], [-1.0]]))
    h = torch.tensor([[1 - 0.5250730514526367 + 0.24611230194568634 + 2,
                       3 * (0.44070982933044434 + 0.07958029955625534) - 2]], dtype=torch.float64)
    x = torch.ones(1, 4, dtype=torch.float64)
    W = fth.dequantized(state, "nf4", 2, 4, 4)  # the codes and constants checked above
    terms = fth.lora_terms(x, W, None, layer.A.detach().double(), layer.B.detach().double(), 1.0)
    ah.assert_close(layer(x), h, dtype=torch.float32, scale=terms, name="h (-0.439 sums terms of 9.56)", where=where)


@pytest.mark.smoke
@pytest.mark.needs(QL)
@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("dtype", DTYPES)
@given(dims=qlora_dims, alpha=alphas, seed=ss.seeds(), bias=st.booleans(), batch=batches)
@example(dims=SMALL, alpha=16.0, seed=0, bias=True, batch=(2,))
@edge_examples(alpha=1.0, seed=1, bias=False, batch=())
def test_qlora_equals_quantized_base_at_init(candidate, quant, dtype, dims, alpha, seed, bias, batch):
    """B = 0 and A random at init: the layer computes x dequant(W_q)ᵀ + b, the quantized pretrained layer."""
    n_in, n_out, r, _ = dims
    layer, W, b, where = fth.qlora_case(candidate, dtype, dims, alpha, seed, quant, bias)
    ah.assert_equal(layer.B.detach(), torch.zeros(n_out, r, dtype=dtype), name="B at init", where=where)
    assert bool((layer.A != 0).any()), f"A is all zeros at init [{where}]"
    x = ss.randn((*batch, n_in), seed + 2, dtype)
    zeros_a, zeros_b = torch.zeros(r, n_in, dtype=torch.float64), torch.zeros(n_out, r, dtype=torch.float64)
    ah.assert_close(layer(x), fth.lora_oracle(x, W, b, zeros_a, zeros_b, 0.0), dtype=dtype, n=n_in,
                    scale=fth.lora_terms(x, W, b, zeros_a, zeros_b, 0.0), name="h at init", where=where)


@pytest.mark.needs(QL)
@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("dtype", DTYPES)
@given(dims=qlora_dims, alpha=alphas, seed=ss.seeds(), bias=st.booleans(), batch=batches)
@example(dims=SMALL, alpha=16.0, seed=0, bias=True, batch=(2,))
@example(dims=MANY_BLOCKS, alpha=8.0, seed=1, bias=True, batch=(3,))
@edge_examples(alpha=16.0, seed=2, bias=True, batch=(2, 3))
def test_qlora_forward_matches_dequantized_formula(candidate, quant, dtype, dims, alpha, seed, bias, batch):
    """Oracle: h = x dequant(W_q)ᵀ + b + (alpha / r) x Aᵀ Bᵀ in float64, dequant(W_q) from the layer's own
    buffers."""
    n_in, n_out, r, _ = dims
    layer, W, b, A, B, where = fth.trained_qlora_case(candidate, dtype, dims, alpha, seed, quant, bias)
    x = ss.randn((*batch, n_in), seed + 2, dtype)
    ah.assert_close(layer(x), fth.lora_oracle(x, W, b, A, B, alpha / r), dtype=dtype, n=n_in + r,
                    scale=fth.lora_terms(x, W, b, A, B, alpha / r), name="h", where=where)


@pytest.mark.needs(QL)
@pytest.mark.parametrize("quant", QUANTS)
@given(dims=qlora_dims, seed=ss.seeds(), magnitude=magnitudes)
@example(dims=SMALL, seed=0, magnitude=1.0)
@example(dims=MANY_BLOCKS, seed=1, magnitude=300.0)
@edge_examples(seed=3, magnitude=1e-3)
def test_qlora_state_quantizes_the_base(candidate, quant, dims, seed, magnitude):
    """The stored state is the quantizer applied to the base weight W (cast to float32), in flat row-major
    blocks: int8-block: step = absmax / 127 and |code - 127 · w / absmax| <= 1/2; nf4: every code is a
    nearest level of w / absmax, the mean is mean(absmax), each double-quantization step is the largest
    |absmax - mean| of its 256 blocks / 127, and the constants come back within half that step."""
    n_in, n_out, r, block = dims
    base = fth.make_base(n_in, n_out, seed)
    with torch.no_grad():
        base.weight.mul_(magnitude)
    W32 = base.weight.detach().float().double()
    layer, where = fth.qlora(candidate, base, r, 4.0, quant, block)
    state = fth.read_state(layer, quant, n_out, n_in, block, where)
    blocks = W32.reshape(-1, block)  # (n_blocks, block)
    absmax = blocks.abs().amax(dim=1)  # (n_blocks,)
    safe = torch.where(absmax > 0, absmax, 1.0)[:, None]
    slack = tol.rounding_floor(torch.float32)
    if quant == "int8-block":
        ah.assert_close(state["weight_scale"], absmax / 127, dtype=torch.float32, name="weight_scale", where=where)
        value = 127 * blocks / safe  # the unrounded code
        fth.assert_within((state["weight_q"].reshape(-1, block).double() - value).abs(), 0.5 + 127 * slack,
                         name="|weight_q - 127 w / absmax|", where=where)
        return
    codes = fth.nf4_codes(state["weight_packed"], n_in * n_out).reshape(-1, block)  # (n_blocks, block)
    dist = (blocks[..., None] / safe[..., None] - fth.NF4_LEVELS).abs()  # (n_blocks, block, 16)
    chosen = dist.gather(-1, codes[..., None])[..., 0]
    fth.assert_within(chosen - dist.amin(-1), slack, name="distance to the chosen level beyond the nearest's",
                     where=where)
    mean = absmax.mean()
    ah.assert_close(state["absmax_mean"], mean, dtype=torch.float32, name="absmax_mean", where=where)
    groups = fth.pad_groups((absmax - mean).abs())  # (n_groups, 256)
    steps = groups.amax(dim=1) / 127
    ah.assert_close(state["absmax_scale"], steps, dtype=torch.float32, n=256, name="absmax_scale", where=where)
    per_block = steps.repeat_interleave(256)[: absmax.numel()]
    fth.assert_within((fth.dq_absmax(state) - absmax).abs(), per_block / 2 + slack * float(absmax.max()),
                     name="|dequantized absmax - absmax|", where=where)


@pytest.mark.needs(QL)
@pytest.mark.parametrize("quant", QUANTS)
@given(dims=qlora_dims, seed=ss.seeds())
@example(dims=(256, 256, 8, 64), seed=0)
@example(dims=MANY_BLOCKS, seed=1)
@edge_examples(seed=2)
def test_qlora_stored_bits_per_weight(candidate, quant, dims, seed):
    """Everything the layer stores besides A, B and the bias (buffers and parameters) is at most the formula:
    nf4: 4 bits a weight + an int8 constant per block + a float32 step per 256 blocks + the float32 mean
    (4.127 bits a weight at block 64 for 256 x 256); int8-block: 8 bits + a float32 step per block (8.5 at 64)."""
    n_in, n_out, r, block = dims
    layer, where = fth.qlora(candidate, fth.make_base(n_in, n_out, seed), r, 4.0, quant, block)
    fth.read_state(layer, quant, n_out, n_in, block, where)
    n = n_in * n_out
    bits, bound = fth.stored_bits(layer), fth.bits_bound(quant, n, block)
    assert bits <= bound, (f"the base is stored in {bits / n:.4f} bits a weight ({bits // 8} bytes), more than "
                           f"the formula's {bound / n:.4f} ({bound // 8} bytes) [{where}]")


@pytest.mark.needs(QL)
@pytest.mark.parametrize("quant", QUANTS)
@given(dims=qlora_dims, alpha=alphas, seed=ss.seeds(), bias=st.booleans())
@example(dims=SMALL, alpha=16.0, seed=0, bias=True)
@edge_examples(alpha=0.5, seed=1, bias=True)
def test_qlora_only_a_and_b_train(candidate, quant, dims, alpha, seed, bias):
    """The trainable parameters are exactly A and B; no stored tensor requires or receives a gradient; an
    optimizer step over the trainable parameters leaves the codes, constants and bias bit for bit as they were."""
    n_in, n_out, r, block = dims
    layer, _, _, _, _, where = fth.trained_qlora_case(candidate, torch.float64, dims, alpha, seed, quant, bias)
    ids = {id(p) for _, p in fth.trainable(layer)}
    assert ids == {id(layer.A), id(layer.B)}, \
        f"trainable parameters are {[n for n, _ in fth.trainable(layer)]}, expected only A and B [{where}]"
    before = fth.read_state(layer, quant, n_out, n_in, block, where)
    bias_before = None if layer.bias is None else layer.bias.detach().clone()
    optimizer = torch.optim.SGD([p for p in layer.parameters() if p.requires_grad], lr=0.1)
    layer(ss.randn((3, n_in), seed + 2)).square().sum().backward()
    graded = [n for n, t in [*layer.named_parameters(), *layer.named_buffers()]
              if id(t) not in ids and (t.requires_grad or t.grad is not None)]
    assert not graded, f"stored tensors require or received gradients: {graded} [{where}]"
    assert layer.A.grad is not None and layer.B.grad is not None, f"A or B received no gradient [{where}]"
    optimizer.step()
    after = fth.read_state(layer, quant, n_out, n_in, block, where)
    for name, value in before.items():
        ah.assert_equal(after[name], value, name=f"{name} after an optimizer step", where=where)
    if bias_before is not None:
        ah.assert_equal(layer.bias.detach(), bias_before, name="bias after an optimizer step", where=where)


@pytest.mark.needs(QL)
@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("dtype", DTYPES)
@given(dims=qlora_dims, alpha=alphas, seed=ss.seeds())
@example(dims=SMALL, alpha=16.0, seed=0)
@edge_examples(alpha=8.0, seed=1)
def test_qlora_gradients(candidate, quant, dtype, dims, alpha, seed):
    """For loss = sum(G ∘ h): dB = s Gᵀ (X Aᵀ), dA = s Bᵀ Gᵀ X (seed 002's LoRA gradients) and
    dX = G dequant(W_q) + s G B A: the input gradient flows through the dequantized base (s = alpha / r)."""
    n_in, n_out, r, _ = dims
    layer, W, _, A, B, where = fth.trained_qlora_case(candidate, dtype, dims, alpha, seed, quant)
    s = alpha / r
    x = ss.randn((5, n_in), seed + 2, dtype).requires_grad_()
    g = ss.randn((5, n_out), seed + 3, dtype)
    (layer(x) * g).sum().backward()
    x64, g64 = x.detach().double(), g.double()
    terms = fth.lora_grad_terms(x64, g64, W, A, B, s)
    grads = {"dL/dB": (layer.B.grad, s * g64.T @ (x64 @ A.T), 5 * n_in),
             "dL/dA": (layer.A.grad, s * B.T @ g64.T @ x64, 5 * n_out),
             "dL/dx": (x.grad, g64 @ W + s * g64 @ B @ A, n_out + r)}
    for name, (actual, expected, n) in grads.items():
        ah.assert_close(actual, expected, dtype=dtype, n=n, scale=terms[name], name=name, where=where)


@pytest.mark.needs(QL)
@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("dtype", DTYPES)
@given(dims=qlora_dims, alpha=alphas, seed=ss.seeds(), bias=st.booleans())
@example(dims=SMALL, alpha=16.0, seed=0, bias=True)
@edge_examples(alpha=1.0, seed=2, bias=False)
def test_qlora_merge_equals_unmerged(candidate, quant, dtype, dims, alpha, seed, bias):
    """merge() returns a plain nn.Linear with weight dequant(W_q) + (alpha / r) B A and the base's bias: the same
    output as the unmerged layer, which merge() leaves as it was."""
    n_in, n_out, r, _ = dims
    layer, W, b, A, B, where = fth.trained_qlora_case(candidate, dtype, dims, alpha, seed, quant, bias)
    s = alpha / r
    x = ss.randn((4, n_in), seed + 2, dtype)
    expected, terms = fth.lora_oracle(x, W, b, A, B, s), fth.lora_terms(x, W, b, A, B, s)
    merged = layer.merge()
    assert isinstance(merged, nn.Linear), f"merge() returned {ah.describe(merged)}, not an nn.Linear [{where}]"
    names = {n for n, _ in merged.named_parameters()}
    assert names <= {"weight", "bias"}, f"merge() returned a layer with parameters {sorted(names)} [{where}]"
    ah.assert_close(merged.weight, W + s * B @ A, dtype=dtype, n=r, scale=fth.merged_terms(W, A, B, s),
                    name="merged weight", where=where)
    if b is None:
        assert merged.bias is None, f"merged layer has a bias, the base had none [{where}]"
    else:
        ah.assert_equal(merged.bias.detach().double(), b, name="merged bias", where=where)
    ah.assert_close(merged(x), expected, dtype=dtype, n=n_in + r, scale=terms, name="merged h", where=where)
    ah.assert_close(layer(x), expected, dtype=dtype, n=n_in + r, scale=terms, name="h after merge()", where=where)


QLORA_BAD = [("r-zero", dict(r=0), "r"), ("r-negative", dict(r=-1), "r"), ("r-float", dict(r=2.5), "r"),
             ("quant-unknown", dict(quant="fp4"), "quant"), ("block-zero", dict(block_size=0), "block_size"),
             ("block-not-dividing", dict(block_size=5), "block_size"), ("not-linear", dict(base="conv"), "base")]


@pytest.mark.needs(QL)
@pytest.mark.parametrize("change,argument", [c[1:] for c in QLORA_BAD], ids=[c[0] for c in QLORA_BAD])
def test_qlora_bad_arguments_raise(candidate, change, argument):
    """r not an int >= 1, an unknown quant, a block size that is not an int >= 1 or does not divide the 4 x 4 = 16
    weights (there is no padding rule), a base that is not an nn.Linear: an error naming the argument."""
    kw = {"base": nn.Linear(4, 4), "r": 2, "quant": "nf4", "block_size": 4, **change}
    if kw["base"] == "conv":
        kw["base"] = nn.Conv2d(4, 4, 1)
    with fth.raises_naming(argument):
        candidate.finetune.QLoRALinear(kw["base"], kw["r"], 8.0, quant=kw["quant"], block_size=kw["block_size"])


# ------------------------------------------------------------------------------------------- apply_qlora
@pytest.mark.needs(AQ)
@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("targets,wrapped", fth.TARGET_CASES, ids=["q-v", "k-mlp2", "fq-mlp0"])
@given(r=ss.sizes(1, 4), alpha=alphas, block=st.sampled_from([1, 4, 16]), seed=ss.seeds())
@example(r=2, alpha=16.0, block=16, seed=0)
@example(r=1, alpha=1.0, block=1, seed=1)  # one block per weight
def test_apply_qlora_wraps_only_targets(candidate, quant, targets, wrapped, r, alpha, block, seed):
    """The named Linear layers get A, B and a quantized state; nothing else changes or trains; Σ r(in + out)
    trainable parameters; at init the model computes the pretrained one with each target's weight replaced by
    dequant(W_q) (float64, from the layer's buffers)."""
    model = fth.toy(0)
    oracle = copy.deepcopy(model)
    layers = fth.toy_layers(model)
    where = ah.snippet(AQ, "Toy()", list(targets), r, alpha, quant=quant, block_size=block)
    model = candidate.finetune.apply_qlora(model, list(targets), r, alpha, quant=quant, block_size=block)
    lora_ids = set()
    for name, (n_in, n_out) in wrapped.items():
        module = model.get_submodule(name)
        ah.assert_tensor(getattr(module, "A", None), (r, n_in), name=f"{name}.A", where=where)
        ah.assert_tensor(getattr(module, "B", None), (n_out, r), name=f"{name}.B", where=where)
        lora_ids |= {id(module.A), id(module.B)}
        W = fth.dequantized(fth.read_state(module, quant, n_out, n_in, block, where), quant, n_out, n_in, block)
        with torch.no_grad():
            oracle.get_submodule(name).weight.copy_(W)
    fth.assert_only_targets_replaced(model, layers, wrapped, where)
    ah.assert_equal(sum(p.numel() for _, p in fth.trainable(model)), sum(r * (i + o) for i, o in wrapped.values()),
                    name="trainable parameters", where=where)
    fth.assert_only_these_train(model, lora_ids, "the LoRA A and B", where)
    x = ss.randn((2, 3, 8), seed)
    with torch.no_grad():
        expected = oracle(x)
    ah.assert_close(model(x).detach(), expected, n=32, name="model output at init", where=where)


APPLY_BAD = [*[(t, {}, "targets", i) for t, i in zip(fth.BAD_TARGETS, fth.BAD_TARGET_IDS)],
             (["q"], dict(r=0), "r", "r-zero"), (["q"], dict(block_size=5), "block_size", "block-not-dividing")]


@pytest.mark.needs(AQ)
@pytest.mark.parametrize("targets,change,argument", [c[:3] for c in APPLY_BAD], ids=[c[3] for c in APPLY_BAD])
def test_apply_qlora_bad_targets_raise(candidate, targets, change, argument):
    """A target matching no module (alone or among known ones), a non-Linear target, r = 0, a block size that
    does not divide a target's weights: an error naming the argument, and the model left as it was."""
    kw = {"r": 2, "block_size": 16, **change}
    model = fth.toy(0)
    with fth.raises_naming(argument):
        candidate.finetune.apply_qlora(model, targets, kw["r"], 8.0, quant="nf4", block_size=kw["block_size"])
    fth.assert_toy_untouched(model, "apply_qlora")


# ------------------------------------------------------------------------------------------------ training
@pytest.mark.needs(AQ)
@pytest.mark.parametrize("quant", QUANTS)
def test_qlora_training_matches_lora_on_dequantized(candidate, quant, fmspec_metrics):
    """Fixed task: a 8-16-8 tanh MLP learns its own weights plus a rank-2 change (the teacher). QLoRA (r = 2,
    alpha = 4, block 16) trained by SGD over the model's trainable parameters follows LoRA trained the same way
    on the dequantized weights (same A and B at the start): the same loss curve to float64 rounding
    (tolerances.py, n = steps · batch · width), and the loss at least halves. The final loss of LoRA on the
    unquantized weights is recorded beside them (what the quantization costs)."""
    where = ah.snippet(AQ, "Sequential(Linear(8, 16), Tanh(), Linear(16, 8))", ["0", "2"], 2, 4.0, quant=quant,
                       block_size=16)
    task = fth.training_task()
    model = candidate.finetune.apply_qlora(copy.deepcopy(task.student), ["0", "2"], 2, 4.0, quant=quant,
                                           block_size=16)
    dequant_lora, plain_lora = copy.deepcopy(task.student), copy.deepcopy(task.student)
    for name in ("0", "2"):
        layer, pretrained = model.get_submodule(name), task.student.get_submodule(name)
        n_out, n_in = pretrained.weight.shape
        W = fth.dequantized(fth.read_state(layer, quant, n_out, n_in, 16, where), quant, n_out, n_in, 16)
        A, B, b = layer.A.detach(), layer.B.detach(), pretrained.bias.detach()
        fth.replace(dequant_lora, name, fth.DequantLoRA(W, b, A, B, 2.0))
        fth.replace(plain_lora, name, fth.DequantLoRA(pretrained.weight.detach(), b, A, B, 2.0))
    curve = fth.train(model, task)
    expected = fth.train(dequant_lora, task)
    fmspec_metrics.update({"initial_loss": curve[0], "final_loss_qlora": curve[-1],
                           "final_loss_lora_dequantized": expected[-1],
                           "final_loss_lora_unquantized": fth.train(plain_lora, task)[-1]})
    ah.assert_close(torch.tensor(curve), torch.tensor(expected), n=task.steps * task.x.numel() * 2,
                    name="loss curve vs LoRA on dequant(W_q)", where=where)
    assert curve[-1] <= curve[0] / 2, (f"the loss went from {curve[0]:.4g} to {curve[-1]:.4g} in {task.steps} steps: "
                                       f"less than halved [{where}]")


# ------------------------------------------------------------------------------------------------ peer
@pytest.mark.needs(QL)
@pytest.mark.parametrize("quant", QUANTS)
def test_qlora_agrees_with_peft(candidate, quant):
    """Trusted library: peft's LoRA Linear around an nn.Linear holding dequant(W_q) (the layer's own state), with
    the same A and B, gives the same output, gradients of A and B, and merged weight."""
    peft_lora = pytest.importorskip("peft.tuners.lora", reason="peft is not installed (pip install fmspec[peers])")
    for dims, alpha, seed in [(SMALL, 16.0, 0), ((6, 5, 3, 6), 1.0, 1), (MANY_BLOCKS, 4.0, 2)]:
        n_in, n_out, r, _ = dims
        layer, W, b, A, B, where = fth.trained_qlora_case(candidate, torch.float64, dims, alpha, seed, quant)
        dense = nn.Linear(n_in, n_out, dtype=torch.float64)
        with torch.no_grad():
            dense.weight.copy_(W)
            dense.bias.copy_(b)
        config = peft_lora.LoraConfig(r=r, lora_alpha=alpha)
        theirs = peft_lora.layer.Linear(dense, "default", config=config, r=r, lora_alpha=alpha)
        theirs.base_layer.requires_grad_(False)
        with torch.no_grad():
            theirs.lora_A["default"].weight.copy_(A)
            theirs.lora_B["default"].weight.copy_(B)
        x, g = ss.randn((3, n_in), seed + 2), ss.randn((3, n_out), seed + 3)
        s = alpha / r
        terms = fth.lora_grad_terms(x, g, W, A, B, s)
        expected = theirs(x)
        (expected * g).sum().backward()
        ah.assert_close(layer(x), expected.detach(), n=n_in + r, scale=fth.lora_terms(x, W, b, A, B, s),
                        name="h vs peft", where=where)
        (layer(x) * g).sum().backward()
        ah.assert_close(layer.A.grad, theirs.lora_A["default"].weight.grad, n=3 * n_out, scale=terms["dL/dA"],
                        name="dL/dA vs peft", where=where)
        ah.assert_close(layer.B.grad, theirs.lora_B["default"].weight.grad, n=3 * n_in, scale=terms["dL/dB"],
                        name="dL/dB vs peft", where=where)
        theirs.merge()
        ah.assert_close(layer.merge().weight, theirs.base_layer.weight.detach(), n=r,
                        scale=fth.merged_terms(W, A, B, s), name="merged weight vs peft", where=where)
