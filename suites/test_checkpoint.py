"""checkpoint: rematerialization (spec: docs/spec/checkpoint.md; reference: reference/checkpoint.py).

The oracle is the same chain run without checkpointing, with the same random state (the blocks use
dropout), differentiated by torch autograd. Memory is what stays allocated after the forward pass
(``mem.held_tensors``, ``suites/memory.py``), which does not depend on how an implementation keeps it.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from fmspec.reference import tiny_gpt  # the lecture's transformer block: a test input, never an oracle
from fmspec.suites import asserts as ah
from fmspec.suites import memory as mem
from fmspec.suites import strategies as ss

pytestmark = pytest.mark.component("checkpoint")


SEQUENTIAL = "checkpoint.checkpoint_sequential"
SELECTIVE = "checkpoint.checkpoint_selective"
PLAN = "checkpoint.plan"

DROPOUT = st.sampled_from([0.0, 0.3])


# ---------------------------------------------------------------------------------------------- inputs
class Block(nn.Module):
    """x -> tanh(dropout(x W^T + b)); appends its index to ``log`` on every forward call."""

    def __init__(self, index: int, d: int, p: float, seed: int, dtype: torch.dtype, log: list):
        super().__init__()
        self.index, self.p, self.log = index, p, log
        self.weight = nn.Parameter(ss.randn((d, d), seed + 2 * index, dtype, scale=1 / math.sqrt(d)))
        self.bias = nn.Parameter(ss.randn((d,), seed + 2 * index + 1, dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.log.append(self.index)
        return torch.tanh(nn.functional.dropout(x @ self.weight.T + self.bias, self.p, training=True))


def chain(n: int, d: int, p: float, seed: int, dtype: torch.dtype = torch.float64) -> tuple[list[Block], list]:
    log: list[int] = []
    return [Block(i, d, p, seed, dtype, log) for i in range(n)], log


def plain(blocks, x):
    for block in blocks:
        x = block(x)
    return x


def run(fn, x: torch.Tensor, cotangent: torch.Tensor, rng_seed: int) -> torch.Tensor:
    """fn() then backward with ``cotangent``, from the random state ``rng_seed`` (the caller's state kept)."""
    with torch.random.fork_rng():
        torch.manual_seed(rng_seed)
        y = fn()
        y.backward(cotangent)
    return y


def grads(x: torch.Tensor, blocks) -> list[tuple[str, torch.Tensor | None]]:
    out = [("x.grad", x.grad)]
    for block in blocks:
        out += [(f"blocks[{block.index}].{name}.grad", p.grad) for name, p in block.named_parameters()]
    return out


def boundaries(n: int, k: int) -> list[int]:
    """The contract's split of n blocks into k segments: the first n % k segments one block longer."""
    size, extra = divmod(n, k)
    return [i * size + min(i, extra) for i in range(k)]


def segments_of(bounds: list[int], n: int) -> list[list[int]]:
    return [list(range(b, e)) for b, e in zip(bounds, bounds[1:] + [n])]


@st.composite
def sequential_cases(draw):
    n = draw(st.integers(1, 7))
    return dict(n=n, k=draw(st.integers(1, n)), d=draw(st.integers(1, 6)), rows=draw(st.integers(1, 4)),
                p=draw(DROPOUT), seed=draw(ss.seeds()))


# ------------------------------------------------------------------------------------ sequential
@pytest.mark.smoke
@pytest.mark.needs(SEQUENTIAL)
@given(case=sequential_cases())
def test_outputs_match_no_checkpointing(candidate, case):
    """Oracle: the chain run plainly, from the same random state: same output."""
    n, k, d, rows, p, seed = (case[key] for key in ("n", "k", "d", "rows", "p", "seed"))
    blocks, _ = chain(n, d, p, seed)
    x = ss.randn((rows, d), seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        expected = plain(blocks, x)
        torch.manual_seed(seed)
        out = ah.call(candidate.checkpoint.checkpoint_sequential, SEQUENTIAL, blocks, x, k)
    ah.assert_close(out, expected, n=d, where=ah.snippet(SEQUENTIAL, f"{n} blocks (dropout {p})", x, k))


@pytest.mark.smoke
@pytest.mark.needs(SEQUENTIAL)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@given(case=sequential_cases())
def test_gradients_match_no_checkpointing(candidate, dtype, case):
    """Oracle: input and parameter gradients of the plain chain; dropout masks must be replayed exactly."""
    n, k, d, rows, p, seed = (case[key] for key in ("n", "k", "d", "rows", "p", "seed"))
    cot = ss.randn((rows, d), seed + 1, dtype)
    ref_blocks, _ = chain(n, d, p, seed, dtype)
    ref_x = ss.randn((rows, d), seed, dtype).requires_grad_()
    run(lambda: plain(ref_blocks, ref_x), ref_x, cot, seed)
    blocks, _ = chain(n, d, p, seed, dtype)
    x = ss.randn((rows, d), seed, dtype).requires_grad_()
    where = ah.snippet(SEQUENTIAL, f"{n} blocks (dropout {p})", x, k)
    run(lambda: ah.call(candidate.checkpoint.checkpoint_sequential, SEQUENTIAL, blocks, x, k), x, cot, seed)
    for (name, got), (_, expected) in zip(grads(x, blocks), grads(ref_x, ref_blocks)):
        assert got is not None, f"{name} is None: no gradient reached it [{where}]"
        ah.assert_close(got, expected, n=n * max(rows, d), name=name, where=where)


@pytest.mark.needs(SEQUENTIAL)
@given(case=sequential_cases())
def test_parameter_gradients_without_input_grad(candidate, case):
    """An input that needs no gradient (data) still lets every parameter get its gradient.

    (The classic pitfall of checkpoint functions that only differentiate with respect to their inputs.)
    """
    n, k, d, rows, p, seed = (case[key] for key in ("n", "k", "d", "rows", "p", "seed"))
    cot = ss.randn((rows, d), seed + 1)
    x = ss.randn((rows, d), seed)
    ref_blocks, _ = chain(n, d, p, seed)
    run(lambda: plain(ref_blocks, x), x, cot, seed)
    blocks, _ = chain(n, d, p, seed)
    where = ah.snippet(SEQUENTIAL, f"{n} blocks (dropout {p})", x, k)
    run(lambda: ah.call(candidate.checkpoint.checkpoint_sequential, SEQUENTIAL, blocks, x, k), x, cot, seed)
    for (name, got), (_, expected) in zip(grads(x, blocks)[1:], grads(x, ref_blocks)[1:]):
        assert got is not None, f"{name} is None: no gradient reached it [{where}]"
        ah.assert_close(got, expected, n=n * max(rows, d), name=name, where=where)


@pytest.mark.smoke
@pytest.mark.needs(SEQUENTIAL)
@given(case=sequential_cases())
def test_forward_keeps_only_segment_inputs(candidate, case):
    """After the forward pass only the checkpoints z_tau are held: one segment input per segment after the
    first (the first is x itself), (k - 1) |x| elements, no block's graph (lecture 003: "store only the
    variables {z_tau : tau in C}")."""
    n, k, d, rows, p, seed = (case[key] for key in ("n", "k", "d", "rows", "p", "seed"))
    blocks, _ = chain(n, d, p, seed)
    x = ss.randn((rows, d), seed).requires_grad_()
    with torch.random.fork_rng(), mem.held_tensors() as held:
        y = ah.call(candidate.checkpoint.checkpoint_sequential, SEQUENTIAL, blocks, x, k)
    kept = held.elements(exclude=[y])
    expected = (k - 1) * x.numel()
    assert kept == expected, (f"{kept} elements held for backward after the forward pass, expected {expected} "
                              f"(the inputs of segments 2..{k}) [{ah.snippet(SEQUENTIAL, f'{n} blocks', x, k)}]")


@pytest.mark.needs(SEQUENTIAL)
@given(case=sequential_cases())
def test_each_segment_rematerialized_once_last_first(candidate, case):
    """The backward pass redoes each segment's forward exactly once, from the last segment to the first
    (lecture 003: "for i = k, ..., 1: rematerialization ... backward pass in block i")."""
    n, k, d, rows, p, seed = (case[key] for key in ("n", "k", "d", "rows", "p", "seed"))
    blocks, log = chain(n, d, p, seed)
    x = ss.randn((rows, d), seed).requires_grad_()
    where = ah.snippet(SEQUENTIAL, f"{n} blocks", x, k)
    y = run(lambda: ah.call(candidate.checkpoint.checkpoint_sequential, SEQUENTIAL, blocks, x, k), x,
            ss.randn((rows, d), seed + 1), seed)
    assert y is not None
    expected = [i for seg in reversed(segments_of(boundaries(n, k), n)) for i in seg]
    ah.assert_equal(log[:n], list(range(n)), name="blocks run in the forward pass", where=where)
    ah.assert_equal(log[n:], expected, name="blocks rerun in the backward pass", where=where)


@pytest.mark.needs(SEQUENTIAL)
@given(n=st.integers(1, 9), data=st.data(), seed=ss.seeds())
def test_segment_boundaries_as_given(candidate, n, data, seed):
    """``segments`` may be the boundaries list ``plan`` returns: those are the segments rematerialized."""
    rest = data.draw(st.lists(st.integers(1, n - 1), unique=True), label="boundaries") if n > 1 else []
    bounds = [0] + sorted(rest)
    blocks, log = chain(n, 3, 0.3, seed)
    x = ss.randn((2, 3), seed).requires_grad_()
    run(lambda: ah.call(candidate.checkpoint.checkpoint_sequential, SEQUENTIAL, blocks, x, bounds), x,
        ss.randn((2, 3), seed + 1), seed)
    expected = [i for seg in reversed(segments_of(bounds, n)) for i in seg]
    ah.assert_equal(log[n:], expected, name="blocks rerun in the backward pass",
                    where=ah.snippet(SEQUENTIAL, f"{n} blocks", x, bounds))


@pytest.mark.needs(SEQUENTIAL, PLAN)
@pytest.mark.parametrize("L", [4, 9, 16])
def test_lecture_network_memory(candidate, L):
    """Lecture 003, "Neural Net Example" (seed lines 795-863): L layers X <- sigma(W X), X in R^{d x m},
    then the read-out X^T w. Reverse mode holds L d m (z_1 .. z_L). Checkpointing at the sqrt(L) boundaries of
    ``plan`` holds k d m: the k - 1 checkpoints after the input (the input is the lecture's
    "parameter/input memory") and z_L, which the loss keeps."""
    d, m = 4, 3

    class Layer(nn.Module):
        def __init__(self, seed: int):
            super().__init__()
            self.W = nn.Parameter(ss.randn((d, d), seed))

        def forward(self, X):
            return torch.sigmoid(self.W @ X)  # (d, m)

    layers = [Layer(i) for i in range(L)]
    X, w = ss.randn((d, m), L), ss.randn((d,), L + 1).requires_grad_()

    def loss(z):
        return (z.T @ w).sum()  # the read-out X^T w (its square left out: it would save m more elements)

    with mem.held_tensors() as held:
        out = loss(plain(layers, X))
    reverse_mode = held.elements(exclude=[out])
    assert reverse_mode == L * d * m, f"instrument check: plain reverse mode holds {reverse_mode}, lecture L d m = {L * d * m}"
    bounds = ah.call(candidate.checkpoint.plan, PLAN, L)
    k = len(bounds)
    assert k == round(math.sqrt(L)), f"plan({L}) has {k} segments, expected round(sqrt({L})) = {round(math.sqrt(L))}"
    with mem.held_tensors() as held:
        out = loss(ah.call(candidate.checkpoint.checkpoint_sequential, SEQUENTIAL, layers, X, bounds))
    kept = held.elements(exclude=[out])
    assert kept == k * d * m, (f"{kept} elements held after the forward pass, expected k d m = {k * d * m} "
                               f"(reverse mode: {L * d * m}) [{ah.snippet(SEQUENTIAL, f'{L} layers', X, bounds)}]")


@pytest.mark.gpu
@pytest.mark.needs(SEQUENTIAL)
@pytest.mark.parametrize("k", [1, 2, 4])
def test_cuda_dropout_masks_replayed(candidate, k):
    """On CUDA the recomputation replays the device's random state: gradients equal the plain chain's."""
    n, d, rows, seed = 4, 16, 8, 3
    cot = ss.randn((rows, d), seed + 1, torch.float32, "cuda")

    def chain_on_cuda():
        blocks, _ = chain(n, d, 0.5, seed, torch.float32)
        return [b.cuda() for b in blocks]

    ref_blocks, blocks = chain_on_cuda(), chain_on_cuda()
    ref_x = ss.randn((rows, d), seed, torch.float32, "cuda").requires_grad_()
    x = ss.randn((rows, d), seed, torch.float32, "cuda").requires_grad_()
    with torch.random.fork_rng(devices=["cuda"]):
        torch.cuda.manual_seed(seed)
        plain(ref_blocks, ref_x).backward(cot)
        torch.cuda.manual_seed(seed)
        ah.call(candidate.checkpoint.checkpoint_sequential, SEQUENTIAL, blocks, x, k).backward(cot)
    where = ah.snippet(SEQUENTIAL, f"{n} blocks on cuda (dropout 0.5)", x, k)
    for (name, got), (_, expected) in zip(grads(x, blocks), grads(ref_x, ref_blocks)):
        assert got is not None, f"{name} is None [{where}]"
        ah.assert_close(got, expected, n=n * d, name=name, where=where)


@pytest.mark.needs(SEQUENTIAL)
def test_no_graph_kept_without_grad(candidate):
    """Under torch.no_grad there is no backward pass to prepare: the output alone, nothing held."""
    blocks, _ = chain(4, 3, 0.0, 0)
    x = ss.randn((2, 3), 0)
    expected = plain(blocks, x)
    with torch.no_grad(), mem.held_tensors() as held:
        y = ah.call(candidate.checkpoint.checkpoint_sequential, SEQUENTIAL, blocks, x, 2)
    ah.assert_close(y, expected, n=3, where=ah.snippet(SEQUENTIAL, "4 blocks", x, 2))
    assert held.elements(exclude=[y]) == 0, "tensors held after a forward pass under torch.no_grad"


@pytest.mark.needs(SEQUENTIAL)
@pytest.mark.parametrize("segments", [0, 5, -1, [1, 2], [0, 0, 2], [0, 2, 1], [0, 4]],
                         ids=["zero", "more-than-blocks", "negative", "not-from-0", "repeated", "decreasing", "past-end"])
def test_bad_segments_raise_value_error(candidate, segments):
    blocks, _ = chain(4, 3, 0.0, 0)
    x = ss.randn((2, 3), 0)
    with pytest.raises((ValueError, TypeError), match="segments"):
        candidate.checkpoint.checkpoint_sequential(blocks, x, segments)


# ------------------------------------------------------------------------------------------------ plan
def least_memory(n: int) -> int:
    """min over k of k + ceil(n / k): k checkpoints + the longest segment (lecture units)."""
    return min(k + -(-n // k) for k in range(1, n + 1))


def plan_memory(bounds: list[int], n: int) -> int:
    return len(bounds) + max(len(seg) for seg in segments_of(bounds, n))


def check_plan(bounds, n: int, where: str) -> None:
    __tracebackhide__ = True
    assert isinstance(bounds, list) and all(isinstance(b, int) for b in bounds), f"plan: expected a list of int, got {bounds!r} [{where}]"
    assert bounds and bounds[0] == 0, f"plan must start at block 0, got {bounds} [{where}]"
    assert all(a < b for a, b in zip(bounds, bounds[1:])) and bounds[-1] < n, f"plan boundaries {bounds} not increasing below {n} [{where}]"


@pytest.mark.smoke
@pytest.mark.needs(PLAN)
@pytest.mark.parametrize("n, expected", [(1, [0]), (3, [0, 2]), (7, [0, 3, 5]), (10, [0, 4, 7]), (16, [0, 4, 8, 12])])
def test_plan_worked_examples(candidate, n, expected):
    """round(sqrt(n)) segments, the first n % k one block longer: 16 blocks -> 4 segments of 4 (memory 8, not
    16); 7 blocks -> 3 segments (sqrt(7) = 2.65) of 3, 2 and 2 blocks."""
    ah.assert_equal(ah.call(candidate.checkpoint.plan, PLAN, n), expected, name="plan", where=ah.snippet(PLAN, n))


@pytest.mark.needs(PLAN)
@given(n=st.integers(1, 400))
def test_plan_has_round_sqrt_segments(candidate, n):
    """Without a budget: k = round(sqrt(n)) segments of as-equal-as-possible length, longer ones first."""
    where = ah.snippet(PLAN, n)
    bounds = ah.call(candidate.checkpoint.plan, PLAN, n)
    check_plan(bounds, n, where)
    ah.assert_equal(bounds, boundaries(n, round(math.sqrt(n))), name="plan", where=where)


@pytest.mark.needs(PLAN)
@given(n=st.integers(1, 400))
def test_plan_memory_is_least_possible(candidate, n):
    """Oracle (brute force over k): k + longest segment is the least any plan achieves, ceil(2 sqrt(n))."""
    where = ah.snippet(PLAN, n)
    bounds = ah.call(candidate.checkpoint.plan, PLAN, n)
    check_plan(bounds, n, where)
    assert plan_memory(bounds, n) == least_memory(n), f"plan {bounds} needs {plan_memory(bounds, n)}, least is {least_memory(n)} [{where}]"


@st.composite
def budget_cases(draw):
    n = draw(st.integers(1, 200))
    return n, draw(st.integers(least_memory(n), n + 3))


@pytest.mark.needs(PLAN)
@given(case=budget_cases())
def test_plan_fits_the_budget(candidate, case):
    """With a memory budget (units of one block's activations), the plan's memory is within it."""
    n, budget = case
    where = ah.snippet(PLAN, n, memory_budget=budget)
    bounds = ah.call(candidate.checkpoint.plan, PLAN, n, memory_budget=budget)
    check_plan(bounds, n, where)
    assert plan_memory(bounds, n) <= budget, f"plan {bounds} needs {plan_memory(bounds, n)} > budget {budget} [{where}]"


@pytest.mark.needs(PLAN)
@given(case=budget_cases())
def test_plan_under_budget_uses_fewest_segments(candidate, case):
    """Oracle (brute force): no plan with fewer segments fits the budget (Chen et al.'s greedy: segments
    as long as the budget allows), and the segments are balanced."""
    n, budget = case
    where = ah.snippet(PLAN, n, memory_budget=budget)
    bounds = ah.call(candidate.checkpoint.plan, PLAN, n, memory_budget=budget)
    fewest = next(k for k in range(1, n + 1) if k + -(-n // k) <= budget)
    ah.assert_equal(bounds, boundaries(n, fewest), name="plan", where=where)


@pytest.mark.needs(PLAN)
@given(n=st.integers(2, 200), short=st.integers(1, 5))
def test_plan_rejects_budget_below_least_memory(candidate, n, short):
    budget = least_memory(n) - short
    if budget <= 0:
        budget = 0.5
    with pytest.raises(ValueError, match="memory_budget"):
        candidate.checkpoint.plan(n, memory_budget=budget)


@pytest.mark.needs(PLAN)
@pytest.mark.parametrize("n", [0, -3, 2.5], ids=["zero", "negative", "float"])
def test_plan_bad_n_blocks_raise_value_error(candidate, n):
    with pytest.raises((ValueError, TypeError), match="n_blocks"):
        candidate.checkpoint.plan(n)


# ------------------------------------------------------------------------------------------- selective
def attention_only(T: int):
    """The lecture's option 2: recompute exactly the T x T attention matrices."""
    return lambda t: t.dim() >= 2 and tuple(t.shape[-2:]) == (T, T)


PREDICATES = {"nothing": lambda T: (lambda t: False), "attention": attention_only, "everything": lambda T: (lambda t: True)}


@st.composite
def block_cases(draw):
    heads, dh = draw(st.integers(1, 3)), draw(st.sampled_from([2, 4]))
    return dict(B=draw(st.integers(1, 2)), T=draw(st.sampled_from([3, 5, 7])), heads=heads, d=heads * dh,
                p=draw(DROPOUT), seed=draw(ss.seeds()))


def make_block(case) -> tiny_gpt.Block:
    with torch.random.fork_rng():
        torch.manual_seed(case["seed"])
        return tiny_gpt.Block(tiny_gpt.Config(d=case["d"], n_heads=case["heads"], dropout=case["p"]))


@pytest.mark.needs(SELECTIVE)
@given(case=block_cases(), which=st.sampled_from(list(PREDICATES)))
def test_selective_matches_no_checkpointing(candidate, case, which):
    """Oracle: the transformer block (with dropout) run plainly: same output, same input and parameter
    gradients, whichever saved tensors are recomputed."""
    B, T, d, seed = case["B"], case["T"], case["d"], case["seed"]
    cot = ss.randn((B, T, d), seed + 1)
    ref_block, block = make_block(case), make_block(case)
    ref_x = ss.randn((B, T, d), seed).requires_grad_()
    ref_y = run(lambda: ref_block(ref_x), ref_x, cot, seed)
    x = ss.randn((B, T, d), seed).requires_grad_()
    recompute = PREDICATES[which](T)
    where = ah.snippet(SELECTIVE, f"Block(d={d}, heads={case['heads']}, dropout={case['p']})", x, f"<recompute {which}>")
    y = run(lambda: ah.call(candidate.checkpoint.checkpoint_selective, SELECTIVE, block, x, recompute), x, cot, seed)
    ah.assert_close(y, ref_y, n=4 * d, where=where)
    pairs = [("x.grad", x.grad, ref_x.grad)] + [
        (f"{name}.grad", p.grad, q.grad) for (name, p), q in zip(block.named_parameters(), ref_block.parameters())]
    for name, got, expected in pairs:
        assert got is not None, f"{name} is None: no gradient reached it [{where}]"
        ah.assert_close(got, expected, n=4 * d * T, name=name, where=where)


@pytest.mark.smoke
@pytest.mark.needs(SELECTIVE)
@given(case=block_cases())
def test_option2_keeps_all_but_attention_matrices(candidate, case):
    """Lecture 003, option 2 (seed lines 2053-2081): "checkpoint everything but the T x T attention
    matrices". After the forward pass the block holds what the plain block holds less its B H T^2
    attention elements."""
    B, T, d, seed = case["B"], case["T"], case["d"], case["seed"]
    x = ss.randn((B, T, d), seed).requires_grad_()
    ref_block, block = make_block(case), make_block(case)
    with torch.random.fork_rng(), mem.held_tensors() as held:
        y = ref_block(x)
    full = held.elements(exclude=[y])
    with torch.random.fork_rng(), mem.held_tensors() as held:
        y = ah.call(candidate.checkpoint.checkpoint_selective, SELECTIVE, block, x, attention_only(T))
    kept = held.elements(exclude=[y])
    expected = full - B * case["heads"] * T * T
    assert kept == expected, (f"{kept} elements held after the forward pass, expected {expected} (the plain "
                              f"block's {full} less B H T^2 = {full - expected}) "
                              f"[{ah.snippet(SELECTIVE, 'Block', x, '<attention matrices>')}]")


@pytest.mark.needs(SELECTIVE)
@given(case=block_cases())
def test_selective_recompute_everything_keeps_nothing(candidate, case):
    """Recomputing every saved tensor is option 1 for one block: nothing but the input is kept."""
    B, T, d, seed = case["B"], case["T"], case["d"], case["seed"]
    x = ss.randn((B, T, d), seed).requires_grad_()
    block = make_block(case)
    with torch.random.fork_rng(), mem.held_tensors() as held:
        y = ah.call(candidate.checkpoint.checkpoint_selective, SELECTIVE, block, x, lambda t: True)
    kept = held.elements(exclude=[y])
    assert kept == 0, f"{kept} elements held after the forward pass [{ah.snippet(SELECTIVE, 'Block', x, '<everything>')}]"


@pytest.mark.needs(SELECTIVE)
def test_selective_bad_recompute_raises_type_error(candidate):
    block = make_block(dict(d=4, heads=2, p=0.0, seed=0))
    with pytest.raises((TypeError, ValueError), match="recompute"):
        candidate.checkpoint.checkpoint_selective(block, ss.randn((1, 3, 4), 0), "attention")
