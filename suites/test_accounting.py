"""accounting: parameters, memory and FLOPs (spec: docs/spec/accounting.md; reference: reference/accounting.py).

Three kinds of checks: the lecture's worked numbers (seed 003, line numbers cited), the closed forms as
hypothesis properties, and the formulas against what the lecture's model (``reference/tiny_gpt.py``, the
measuring instrument, never the oracle of a formula) actually has, allocates and saves for backward.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from fmspec.reference import tiny_gpt  # the lecture's program, measured; its counts are not an answer key
from fmspec.suites import asserts as ah
from fmspec.suites import memory as mem
from fmspec.suites import strategies as ss

pytestmark = pytest.mark.component("accounting")


PARAMS = "accounting.transformer_params"
FORWARD = "accounting.forward_memory"
GRAPH = "accounting.graph_memory"
CKPT = "accounting.checkpoint_memory"
MFU = "accounting.mfu"
INTENSITY = "accounting.arithmetic_intensity"
BYTES = "accounting.model_bytes"
GPUS = "accounting.gpus_to_hold"

# Llama 3 405B (seed lines 1343-1350): 16k H100s, 405B parameters, 16.5T tokens, 54 days, 1671 TFLOP/s
LLAMA3 = dict(n_params=405e9, tokens=16.5e12, n_gpus=16e3, peak_flops=1671e12, seconds=54 * 24 * 60 * 60)

dims = st.integers(1, 64)
small = st.integers(1, 8)


def scalar(value) -> torch.Tensor:
    assert isinstance(value, (int, float)) and not isinstance(value, bool), f"expected a number, got {value!r}"
    return torch.tensor(float(value), dtype=torch.float64)


def sig(value: float, digits: int) -> float:
    """``value`` rounded to ``digits`` significant figures, as the slides write numbers."""
    return float(f"{value:.{digits - 1}e}")


# ------------------------------------------------------------------------------------ worked numbers
@pytest.mark.smoke
@pytest.mark.needs(MFU)
def test_llama3_mfu_is_32_percent(candidate):
    """Seed line 1350: MFU = 6 * 405e9 * 16.5e12 / (16e3 * 1671e12 * 54 * 24 * 60 * 60) * 100 = 32%."""
    where = ah.snippet(MFU, **LLAMA3)
    oracle = 6 * 405e9 * 16.5e12 / (16e3 * 1671e12 * 54 * 24 * 60 * 60)
    got = ah.call(candidate.accounting.mfu, MFU, **LLAMA3)
    ah.assert_close(scalar(got), scalar(oracle), n=8, name="mfu", where=where)
    assert round(100 * got) == 32, f"MFU = {100 * got:.2f}%, the lecture's 32% [{where}]"


@pytest.mark.smoke
@pytest.mark.needs(INTENSITY)
def test_h100_arithmetic_intensity_is_160(candidate):
    """Seed line 1410: 5.4e14 FLOP/s per GPU over 3.35e12 bytes/s = 160 FLOPs per byte (161.2, to two
    significant figures)."""
    where = ah.snippet(INTENSITY, 5.4e14, 3.35e12)
    got = ah.call(candidate.accounting.arithmetic_intensity, INTENSITY, 5.4e14, 3.35e12)
    ah.assert_close(scalar(got), scalar(5.4e14 / 3.35e12), n=1, name="intensity", where=where)
    assert sig(got, 2) == 160, f"{got} FLOPs/byte, the lecture's 160 [{where}]"


@pytest.mark.needs(MFU, INTENSITY)
def test_llama3_achieved_flops_give_160_flops_per_byte(candidate):
    """Seed lines 1350 and 1410 chained: the 32% MFU of 1671e12 FLOP/s is the 5.4e14 FLOP/s per GPU
    (two significant figures) that, over the H100's 3.35e12 bytes/s, needs 160 FLOPs per byte."""
    achieved = candidate.accounting.mfu(**LLAMA3) * LLAMA3["peak_flops"]
    assert sig(achieved, 2) == 5.4e14, f"MFU x peak = {achieved:.3g} FLOP/s, the lecture's 5.4e14"
    got = candidate.accounting.arithmetic_intensity(achieved, 3.35e12)
    assert sig(got, 2) == 160, f"{got} FLOPs/byte at the achieved rate, the lecture's 160"


@pytest.mark.smoke
@pytest.mark.needs(BYTES, GPUS)
@pytest.mark.parametrize("n_params, terabytes, gpus", [(400e9, 0.8, 10), (2e12, 4.0, 50), (1.6e12, 3.2, 40)],
                         ids=["llama3.1-400B", "gpt4-2T", "gpt4-1.6T"])
def test_bfloat16_weights_and_h100s_to_hold_them(candidate, n_params, terabytes, gpus):
    """Seed lines 1086-1107: bfloat16, 2 bytes a parameter: Llama 3.1 (400B) needs 0.8 TB, 10 H100s of
    80 GB; GPT-4 (~2T) 4 TB. The slide's "GPT4: 40 H100s" is 3.2 TB, the 1.6T estimate of seed line 84;
    4 TB needs 50."""
    where = ah.snippet(BYTES, n_params)
    got = ah.call(candidate.accounting.model_bytes, BYTES, n_params)
    ah.assert_close(scalar(got), scalar(terabytes * 1e12), n=1, name="bytes", where=where)
    ah.assert_equal(ah.call(candidate.accounting.gpus_to_hold, GPUS, n_params), gpus, name="H100s",
                    where=ah.snippet(GPUS, n_params))


@pytest.mark.needs(BYTES, GPUS)
@given(n_params=st.floats(1e6, 1e13), bytes_per_param=st.sampled_from([0.5, 1, 2, 4]), gpu_gb=st.sampled_from([16, 24, 40, 80, 141]))
@example(n_params=400e9, bytes_per_param=2, gpu_gb=80)  # exactly 10 GPUs: a `<` for `<=` adds one
@example(n_params=1e6, bytes_per_param=0.5, gpu_gb=141)  # far below one GPU: still 1, not 0
def test_gpus_to_hold_is_fewest_that_fit(candidate, n_params, bytes_per_param, gpu_gb):
    """ceil: the GPUs hold all the weights, one GPU fewer would not."""
    gpu_bytes = gpu_gb * 1e9
    where = ah.snippet(GPUS, n_params, bytes_per_param, gpu_bytes)
    need = n_params * bytes_per_param
    got = ah.call(candidate.accounting.gpus_to_hold, GPUS, n_params, bytes_per_param, gpu_bytes)
    assert isinstance(got, int) and got * gpu_bytes >= need and (got - 1) * gpu_bytes < need, (
        f"{got} GPUs of {gpu_bytes:.3g} bytes for {need:.6g} bytes of weights [{where}]")


# --------------------------------------------------------------------------------------- closed forms
@pytest.mark.smoke
@pytest.mark.needs(PARAMS)
@given(d=dims, L=dims, V=st.integers(1, 100_000))
@example(d=1, L=1, V=1)  # the smallest model: every term 1 before its coefficient
@example(d=3, L=2, V=5)  # d, L and V distinct: a term with the wrong factor shows
def test_transformer_params_formula(candidate, d, L, V):
    """12 d^2 L + 2 d V (seed line 1766): W_Q, W_K, W_V, W_1, W_2, W_proj a layer, W_embed and W_unembed."""
    got = ah.call(candidate.accounting.transformer_params, PARAMS, d, L, V)
    ah.assert_equal(got, 12 * d * d * L + 2 * d * V, name="params", where=ah.snippet(PARAMS, d, L, V))


@pytest.mark.needs(FORWARD)
@given(d=dims, T=dims, V=st.integers(1, 100_000), H=small, B=small)
@example(d=1, T=1, V=1, H=1, B=1)
@example(d=3, T=5, V=7, H=3, B=2)  # several heads and sequences
def test_forward_memory_formula(candidate, d, T, V, H, B):
    """B (4dT + N_heads T^2 + VT) (seed line 1863)."""
    got = ah.call(candidate.accounting.forward_memory, FORWARD, d, T, V, n_heads=H, B=B)
    ah.assert_equal(got, B * (4 * d * T + H * T * T + V * T), name="forward memory",
                    where=ah.snippet(FORWARD, d, T, V, n_heads=H, B=B))


@pytest.mark.smoke
@pytest.mark.needs(GRAPH)
@given(d=dims, L=dims, T=dims, V=st.integers(1, 100_000), H=small, B=small)
@example(d=1, L=1, T=1, V=1, H=1, B=1)
@example(d=3, L=2, T=5, V=7, H=3, B=2)
def test_graph_memory_formula(candidate, d, L, T, V, H, B):
    """B (12 L dT + L N_heads T^2 + 2 VT) (seed line 1888)."""
    got = ah.call(candidate.accounting.graph_memory, GRAPH, d, L, T, V, n_heads=H, B=B)
    ah.assert_equal(got, B * (12 * L * d * T + L * H * T * T + 2 * V * T), name="graph memory",
                    where=ah.snippet(GRAPH, d, L, T, V, n_heads=H, B=B))


@pytest.mark.needs(CKPT)
@given(d=dims, L=dims, T=dims, V=st.integers(1, 100_000), H=small, B=small)
@example(d=1, L=1, T=1, V=1, H=1, B=1)  # one layer: option 1 keeps L dT + 12 dT, option 2 12 L dT
@example(d=3, L=4, T=5, V=7, H=2, B=3)
def test_checkpoint_memory_formula(candidate, d, L, T, V, H, B):
    """Option 1 (seed lines 2050-2051): B (L dT + 12 dT + N_heads T^2); option 2 (seed line 2081): B 12 L dT."""
    for option, expected in ((1, B * (L * d * T + 12 * d * T + H * T * T)), (2, B * 12 * L * d * T)):
        got = ah.call(candidate.accounting.checkpoint_memory, CKPT, d, L, T, V, n_heads=H, B=B, option=option)
        ah.assert_equal(got, expected, name=f"option {option}", where=ah.snippet(CKPT, d, L, T, V, n_heads=H, B=B, option=option))


@pytest.mark.needs(MFU)
@given(N=st.floats(1e6, 1e13), D=st.floats(1e6, 1e14), G=st.integers(1, 100_000),
       P=st.floats(1e12, 1e16), t=st.floats(1.0, 1e8))
@example(N=405e9, D=16.5e12, G=16_000, P=1671e12, t=54 * 24 * 60 * 60.0)  # the lecture's Llama 3
def test_mfu_formula(candidate, N, D, G, P, t):
    """6 N D / (G P t): forward 2 N D and backward 4 N D FLOPs a token, over what G GPUs of peak P do in t."""
    got = ah.call(candidate.accounting.mfu, MFU, N, D, G, P, t)
    ah.assert_close(scalar(got), scalar(6 * N * D / (G * P * t)), n=8, name="mfu", where=ah.snippet(MFU, N, D, G, P, t))


@pytest.mark.needs(INTENSITY)
@given(flops=st.floats(1e9, 1e18), bandwidth=st.floats(1e9, 1e14))
def test_arithmetic_intensity_formula(candidate, flops, bandwidth):
    got = ah.call(candidate.accounting.arithmetic_intensity, INTENSITY, flops, bandwidth)
    ah.assert_close(scalar(got), scalar(flops / bandwidth), n=1, name="intensity", where=ah.snippet(INTENSITY, flops, bandwidth))


@pytest.mark.needs(FORWARD, GRAPH, CKPT)
@given(d=dims, L=dims, T=dims, V=dims, H=small, B=st.integers(2, 8))
@example(d=1, L=1, T=1, V=1, H=1, B=2)
def test_memory_scales_with_batch(candidate, d, L, T, V, H, B):
    """Every activation term is per sequence: B sequences take B times the memory of one."""
    acc = candidate.accounting
    calls = [(FORWARD, acc.forward_memory, (d, T, V), {}), (GRAPH, acc.graph_memory, (d, L, T, V), {}),
             (CKPT, acc.checkpoint_memory, (d, L, T, V), {"option": 1}), (CKPT, acc.checkpoint_memory, (d, L, T, V), {"option": 2})]
    for name, fn, args, kw in calls:
        one = fn(*args, n_heads=H, B=1, **kw)
        ah.assert_equal(fn(*args, n_heads=H, B=B, **kw), B * one, name=f"{name}(B={B}) vs {B} x (B=1)",
                        where=ah.snippet(name, *args, n_heads=H, B=B, **kw))


# ------------------------------------------------------------------------ against the lecture's model
@st.composite
def models(draw):
    """Sizes where shapes tell tensors apart: T odd, d and d_head even, V > 4d."""
    H, dh = draw(st.integers(1, 3)), draw(st.sampled_from([2, 4]))
    d = H * dh
    return dict(d=d, L=draw(st.integers(1, 3)), T=draw(st.sampled_from([3, 5, 7])), V=draw(st.integers(4 * d + 1, 4 * d + 9)),
                H=H, B=draw(st.integers(1, 2)), seed=draw(ss.seeds()))


ONE_LAYER = dict(d=2, L=1, T=3, V=9, H=1, B=1, seed=0)  # one layer, one head, one sequence
MANY_HEADS = dict(d=6, L=3, T=7, V=33, H=3, B=2, seed=1)  # three heads of 2, three layers, two sequences


def build(m) -> tuple[tiny_gpt.TinyGPT, torch.Tensor, torch.Tensor]:
    with torch.random.fork_rng():
        torch.manual_seed(m["seed"])
        model = tiny_gpt.TinyGPT(tiny_gpt.Config(d=m["d"], n_layers=m["L"], vocab=m["V"], n_heads=m["H"]))
        ids = torch.randint(0, m["V"], (m["B"], m["T"]))
    return model, ids, tiny_gpt.one_hot(ids, m["V"])


def block_saved(model, x, T: int) -> tuple[int, int]:
    """(all, attention) elements one block saves for backward, its input included."""
    with mem.saved_tensors(exclude=model.parameters()) as saved:
        model.blocks[0](x)
    attention = sum(n for shape, n in saved.by_shape.items() if shape[-2:] == (T, T))
    return saved.elements, attention


def args_of(m) -> tuple:
    return m["d"], m["L"], m["T"], m["V"]


@pytest.mark.smoke
@pytest.mark.needs(PARAMS)
@given(m=models())
@example(m=ONE_LAYER)
@example(m=MANY_HEADS)
def test_params_equal_model_parameter_count(candidate, m):
    """The lecture's model has exactly 12 d^2 L + 2 d V parameters (no biases, no layer norms)."""
    model, _, _ = build(m)
    count = sum(p.numel() for p in model.parameters())
    got = ah.call(candidate.accounting.transformer_params, PARAMS, m["d"], m["L"], m["V"])
    ah.assert_equal(got, count, name="params", where=ah.snippet(PARAMS, m["d"], m["L"], m["V"]))


@pytest.mark.needs(FORWARD)
@given(m=models())
@example(m=ONE_LAYER)
@example(m=MANY_HEADS)
def test_forward_memory_sums_largest_intermediates(candidate, m):
    """The three terms of the forward memory are the largest tensors a forward pass allocates: the MLP's
    4d-wide hidden (4dT), the attention matrices (N_heads T^2), the logits (VT), each times B."""
    model, _, onehot = build(m)
    d, T, V = m["d"], m["T"], m["V"]
    with torch.no_grad(), mem.op_outputs() as outputs:
        model(onehot)

    def largest(keep) -> int:
        return max(math.prod(shape) for _, shape in outputs if keep(shape))

    measured = largest(lambda s: s[-1] == 4 * d) + largest(lambda s: s[-2:] == (T, T)) + largest(lambda s: s[-1] == V)
    where = ah.snippet(FORWARD, d, T, V, n_heads=m["H"], B=m["B"])
    got = ah.call(candidate.accounting.forward_memory, FORWARD, d, T, V, n_heads=m["H"], B=m["B"])
    ah.assert_equal(got, measured, name="forward memory (largest hidden + attention + logits)", where=where)


@pytest.mark.smoke
@pytest.mark.needs(GRAPH)
@given(m=models())
@example(m=ONE_LAYER)
@example(m=MANY_HEADS)
def test_graph_memory_against_saved_tensors(candidate, m):
    """What the model saves for backward (saved_tensors_hooks, one count per storage, parameters aside):
    per layer X, Q, K, V, the attention output, sigma(X W_1), sigma(X W_2) (10 dT) and the attention
    matrices (N_heads T^2); once, the one-hot input and the log-probabilities (2 VT) and the last block's
    output (dT). The lecture's formula has the attention and vocabulary terms exactly and rounds the
    layer's 10 dT up to 12 dT: graph_memory - saved = B (2L - 1) dT, exactly."""
    model, ids, onehot = build(m)
    d, L, T, B = m["d"], m["L"], m["T"], m["B"]
    with mem.saved_tensors(exclude=model.parameters()) as saved:
        tiny_gpt.log_loss(model(onehot), ids)
    where = ah.snippet(GRAPH, *args_of(m), n_heads=m["H"], B=B)
    got = ah.call(candidate.accounting.graph_memory, GRAPH, *args_of(m), n_heads=m["H"], B=B)
    assert got - saved.elements == B * (2 * L - 1) * d * T, (
        f"graph_memory = {got}, the model saves {saved.elements}: difference {got - saved.elements}, expected "
        f"the lecture's rounding B (2L - 1) dT = {B * (2 * L - 1) * d * T} [{where}]")


@pytest.mark.needs(CKPT)
@given(m=models())
@example(m=ONE_LAYER)
@example(m=MANY_HEADS)
def test_checkpoint_option1_against_saved_tensors(candidate, m):
    """Option 1 (seed lines 2050-2051) on the model: "memory for checkpointing L dT" is the L block inputs
    (measured), "graph memory for rematerialization 12 dT + N_heads T^2" one block's saved tensors
    (measured: 10 dT + N_heads T^2). The formula is their sum with the layer's 10 dT rounded up to 12 dT."""
    model, _, onehot = build(m)
    d, T, B = m["d"], m["T"], m["B"]
    x = model.embed(onehot)
    checkpoints = m["L"] * x.numel()
    graph, _ = block_saved(model, x, T)
    where = ah.snippet(CKPT, *args_of(m), n_heads=m["H"], B=B, option=1)
    got = ah.call(candidate.accounting.checkpoint_memory, CKPT, *args_of(m), n_heads=m["H"], B=B, option=1)
    assert got - (checkpoints + graph) == 2 * B * d * T, (
        f"checkpoint_memory(option=1) = {got}; measured {checkpoints} (block inputs) + {graph} (one block's "
        f"graph): difference {got - checkpoints - graph}, expected the rounding 2 B dT = {2 * B * d * T} [{where}]")


@pytest.mark.needs(CKPT)
@given(m=models())
@example(m=ONE_LAYER)
@example(m=MANY_HEADS)
def test_checkpoint_option2_against_saved_tensors(candidate, m):
    """Option 2 (seed line 2081) on the model: every layer keeps its saved tensors except the T x T
    attention matrices, L (10 dT) measured; the formula's 12 L dT rounds each layer up by 2 dT."""
    model, _, onehot = build(m)
    d, L, T, B = m["d"], m["L"], m["T"], m["B"]
    graph, attention = block_saved(model, model.embed(onehot), T)
    assert attention == B * m["H"] * T * T, f"instrument check: {attention} attention elements, expected B H T^2"
    kept = L * (graph - attention)
    where = ah.snippet(CKPT, *args_of(m), n_heads=m["H"], B=B, option=2)
    got = ah.call(candidate.accounting.checkpoint_memory, CKPT, *args_of(m), n_heads=m["H"], B=B, option=2)
    assert got - kept == 2 * B * L * d * T, (
        f"checkpoint_memory(option=2) = {got}; the model keeps {kept} without its attention matrices: "
        f"difference {got - kept}, expected the rounding 2 B L dT = {2 * B * L * d * T} [{where}]")


# ------------------------------------------------------------------------------------- bad arguments
BAD = [
    (PARAMS, (0, 1, 1), {}, "d"), (PARAMS, (4, -1, 1), {}, "L"), (PARAMS, (4, 2, 2.5), {}, "V"),
    (FORWARD, (4, 0, 8), {}, "T"), (FORWARD, (4, 3, 8), {"n_heads": 0}, "n_heads"),
    (GRAPH, (4, 2, 3, 8), {"B": 0}, "B"), (GRAPH, (4, 2.0, 3, 8), {}, "L"),
    (CKPT, (4, 2, 3, 8), {"option": 3}, "option"), (CKPT, (4, 2, 3, 8), {"option": 0}, "option"),
    (MFU, (405e9, 16.5e12, 16e3, 1671e12, 0), {}, "seconds"), (MFU, (405e9, 16.5e12, -1, 1671e12, 1.0), {}, "n_gpus"),
    (MFU, (405e9, 0.0, 16e3, 1671e12, 1.0), {}, "tokens"),
    (INTENSITY, (5.4e14, 0.0), {}, "bytes_per_s"), (INTENSITY, (-1.0, 3.35e12), {}, "flops_per_s"),
    (BYTES, (0,), {}, "n_params"), (BYTES, (400e9,), {"bytes_per_param": -2}, "bytes_per_param"),
    (GPUS, (400e9,), {"gpu_bytes": 0}, "gpu_bytes"),
]


@pytest.mark.parametrize("feature, args, kwargs, argument", [
    pytest.param(*case, marks=pytest.mark.needs(case[0]), id=f"{case[0].split('.')[1]}-{case[3]}") for case in BAD])
def test_bad_arguments_raise_value_error(candidate, feature, args, kwargs, argument):
    """Sizes must be ints >= 1, rates and counts > 0, option 1 or 2: ValueError (or TypeError) whose message
    names the argument as a word (``d``, not a "d" somewhere in "hidden width")."""
    fn = candidate.resolve(feature)
    with pytest.raises((ValueError, TypeError), match=rf"\b{argument}\b"):
        fn(*args, **kwargs)
