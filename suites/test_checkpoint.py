"""checkpoint: rematerialization (spec: docs/spec/checkpoint.md; reference: reference/checkpoint.py).

The oracle is the same chain run without checkpointing, with the same random state (the blocks use
dropout), differentiated by torch autograd. Memory is what stays allocated after the forward pass
(``mem.held_tensors``, ``suites/memory.py``), which does not depend on how an implementation keeps it.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import example, given
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
    """x -> tanh(dropout(x W^T + b)); appends its index to ``log`` on every forward call, and its input,
    pre-activation, dropped-out pre-activation and output to ``trace`` where one is given (the oracle's
    chain, for :func:`term_scales`)."""

    def __init__(self, index: int, d: int, p: float, seed: int, dtype: torch.dtype, log: list,
                 trace: list | None = None):
        super().__init__()
        self.index, self.p, self.log, self.trace = index, p, log, trace
        self.weight = nn.Parameter(ss.randn((d, d), seed + 2 * index, dtype, scale=1 / math.sqrt(d)))
        self.bias = nn.Parameter(ss.randn((d,), seed + 2 * index + 1, dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.log.append(self.index)
        z = x @ self.weight.T + self.bias  # (rows, d)
        dropped = nn.functional.dropout(z, self.p, training=True)
        y = torch.tanh(dropped)
        if self.trace is not None:
            self.trace.append(tuple(t.detach().to(torch.float64) for t in (x, z, dropped, y)))
        return y


def chain(n: int, d: int, p: float, seed: int, dtype: torch.dtype = torch.float64,
          trace: list | None = None) -> tuple[list[Block], list]:
    log: list[int] = []
    return [Block(i, d, p, seed, dtype, log, trace) for i in range(n)], log


def term_scales(blocks: list[Block], trace: list, cotangent: torch.Tensor) -> dict[str, float]:
    """The largest sum of absolute terms behind each element of the chain's output and of each gradient
    (float64, from the oracle's ``trace``), for ``ah.assert_close(scale=)``: a bias gradient sums its rows'
    terms, a weight gradient its rows' outer products, and such sums may cancel far below their terms.

    Forward, t_0 = |x|; a block's pre-activation sums max(|x|, t) |W|^T + |b|, scaled by its dropout factor
    m and carried through tanh' = 1 - y^2 (the rounding of those terms, as it reaches y). Backward from
    |cotangent|: g_z = g (1 - y^2) m, then dW = g_z^T max(|x|, t), db = sum of g_z's rows and g <- g_z |W|."""
    t, inputs, factors = trace[0][0].abs(), [], []
    p = blocks[0].p
    for block, (x, z, dropped, y) in zip(blocks, trace):
        m = torch.where(z != 0, dropped / z.where(z != 0, 1.0), 1 / (1 - p)).abs()  # the dropout factor
        inputs.append(torch.maximum(t, x.abs()))
        factors.append((1 - y**2) * m)
        t = (inputs[-1] @ block.weight.detach().double().abs().T + block.bias.detach().double().abs()) * factors[-1]
    scales = {"out": t.max().item()}
    g = cotangent.detach().double().abs()
    for block, t_in, f in reversed(list(zip(blocks, inputs, factors))):
        gz = g * f  # (rows, d)
        scales[f"blocks[{block.index}].weight.grad"] = (gz.T @ t_in).max().item()
        scales[f"blocks[{block.index}].bias.grad"] = gz.sum(0).max().item()
        g = gz @ block.weight.detach().double().abs()
    scales["x.grad"] = g.max().item()
    return scales


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


# the splits that reveal the usual bugs, which random draws meet rarely: one block in one segment, one segment
# holding every block (the last segment is the first), one segment per block, n not divisible by k (3, 2, 2)
# (seeds whose dropout masks leave every gradient non-zero)
SPLITS = [dict(n=1, k=1, d=1, rows=1, p=0.3, seed=1), dict(n=6, k=1, d=3, rows=2, p=0.3, seed=0),
          dict(n=5, k=5, d=3, rows=2, p=0.3, seed=2), dict(n=7, k=3, d=2, rows=3, p=0.3, seed=0)]


def split_examples(test):
    """``test`` with an explicit example for each of :data:`SPLITS`."""
    for case in SPLITS:
        test = example(case=case)(test)
    return test


# ------------------------------------------------------------------------------------ sequential
@pytest.mark.smoke
@pytest.mark.needs(SEQUENTIAL)
@given(case=sequential_cases())
@split_examples
def test_outputs_match_no_checkpointing(candidate, case):
    """Oracle: the chain run plainly, from the same random state: same output."""
    n, k, d, rows, p, seed = (case[key] for key in ("n", "k", "d", "rows", "p", "seed"))
    trace: list = []
    blocks, _ = chain(n, d, p, seed, trace=trace)
    x = ss.randn((rows, d), seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        expected = plain(blocks, x)
        for block in blocks:
            block.trace = None
        torch.manual_seed(seed)
        out = ah.call(candidate.checkpoint.checkpoint_sequential, SEQUENTIAL, blocks, x, k)
    scale = term_scales(blocks, trace, torch.zeros_like(x))["out"]
    ah.assert_close(out, expected, n=d, scale=scale, where=ah.snippet(SEQUENTIAL, f"{n} blocks (dropout {p})", x, k))


@pytest.mark.smoke
@pytest.mark.needs(SEQUENTIAL)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@given(case=sequential_cases())
@split_examples
def test_gradients_match_no_checkpointing(candidate, dtype, case):
    """Oracle: input and parameter gradients of the plain chain; dropout masks must be replayed exactly."""
    n, k, d, rows, p, seed = (case[key] for key in ("n", "k", "d", "rows", "p", "seed"))
    cot = ss.randn((rows, d), seed + 1, dtype)
    trace: list = []
    ref_blocks, _ = chain(n, d, p, seed, dtype, trace)
    ref_x = ss.randn((rows, d), seed, dtype).requires_grad_()
    run(lambda: plain(ref_blocks, ref_x), ref_x, cot, seed)
    scales = term_scales(ref_blocks, trace, cot)
    blocks, _ = chain(n, d, p, seed, dtype)
    x = ss.randn((rows, d), seed, dtype).requires_grad_()
    where = ah.snippet(SEQUENTIAL, f"{n} blocks (dropout {p})", x, k)
    run(lambda: ah.call(candidate.checkpoint.checkpoint_sequential, SEQUENTIAL, blocks, x, k), x, cot, seed)
    for (name, got), (_, expected) in zip(grads(x, blocks), grads(ref_x, ref_blocks)):
        assert got is not None, f"{name} is None: no gradient reached it [{where}]"
        ah.assert_close(got, expected, n=n * max(rows, d), scale=scales[name], name=name, where=where)


@pytest.mark.needs(SEQUENTIAL)
@given(case=sequential_cases())
@split_examples
def test_parameter_gradients_without_input_grad(candidate, case):
    """An input that needs no gradient (data) still lets every parameter get its gradient.

    (The classic pitfall of checkpoint functions that only differentiate with respect to their inputs.)
    """
    n, k, d, rows, p, seed = (case[key] for key in ("n", "k", "d", "rows", "p", "seed"))
    cot = ss.randn((rows, d), seed + 1)
    x = ss.randn((rows, d), seed)
    trace: list = []
    ref_blocks, _ = chain(n, d, p, seed, trace=trace)
    run(lambda: plain(ref_blocks, x), x, cot, seed)
    scales = term_scales(ref_blocks, trace, cot)
    blocks, _ = chain(n, d, p, seed)
    where = ah.snippet(SEQUENTIAL, f"{n} blocks (dropout {p})", x, k)
    run(lambda: ah.call(candidate.checkpoint.checkpoint_sequential, SEQUENTIAL, blocks, x, k), x, cot, seed)
    for (name, got), (_, expected) in zip(grads(x, blocks)[1:], grads(x, ref_blocks)[1:]):
        assert got is not None, f"{name} is None: no gradient reached it [{where}]"
        ah.assert_close(got, expected, n=n * max(rows, d), scale=scales[name], name=name, where=where)


@pytest.mark.smoke
@pytest.mark.needs(SEQUENTIAL)
@given(case=sequential_cases())
@split_examples
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
@split_examples
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


@st.composite
def boundary_cases(draw) -> tuple[int, list[int]]:
    """n blocks and increasing boundaries from 0 below n."""
    n = draw(st.integers(1, 9))
    rest = draw(st.lists(st.integers(1, n - 1), unique=True)) if n > 1 else []
    return n, [0] + sorted(rest)


@pytest.mark.needs(SEQUENTIAL)
@given(case=boundary_cases(), seed=ss.seeds())
@example(case=(1, [0]), seed=0)  # one block
@example(case=(6, [0]), seed=0)  # one segment of every block
@example(case=(5, [0, 1, 2, 3, 4]), seed=0)  # one segment per block
@example(case=(7, [0, 5]), seed=0)  # segments of unequal length, the longer first (not what plan makes)
def test_segment_boundaries_as_given(candidate, case, seed):
    """``segments`` may be the boundaries list ``plan`` returns: those are the segments rematerialized."""
    n, bounds = case
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

    def chain_on_cuda(trace=None):
        blocks, _ = chain(n, d, 0.5, seed, torch.float32, trace)
        return [b.cuda() for b in blocks]

    trace: list = []
    ref_blocks, blocks = chain_on_cuda(trace), chain_on_cuda()
    ref_x = ss.randn((rows, d), seed, torch.float32, "cuda").requires_grad_()
    x = ss.randn((rows, d), seed, torch.float32, "cuda").requires_grad_()
    with torch.random.fork_rng(devices=["cuda"]):
        torch.cuda.manual_seed(seed)
        plain(ref_blocks, ref_x).backward(cot)
        torch.cuda.manual_seed(seed)
        ah.call(candidate.checkpoint.checkpoint_sequential, SEQUENTIAL, blocks, x, k).backward(cot)
    where = ah.snippet(SEQUENTIAL, f"{n} blocks on cuda (dropout 0.5)", x, k)
    scales = term_scales(ref_blocks, trace, cot)
    for (name, got), (_, expected) in zip(grads(x, blocks), grads(ref_x, ref_blocks)):
        assert got is not None, f"{name} is None [{where}]"
        ah.assert_close(got, expected, n=n * d, scale=scales[name], name=name, where=where)


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
    """A count outside 1..len(blocks) or boundaries that do not start at 0 and increase below len(blocks):
    ValueError naming ``segments``."""
    blocks, _ = chain(4, 3, 0.0, 0)
    x = ss.randn((2, 3), 0)
    with pytest.raises(ValueError, match=r"\bsegments\b"):
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
@example(n=1)
@example(n=2)  # round(sqrt 2) = 1: one segment
@example(n=7)  # sqrt 7 = 2.65: round gives 3, floor 2
@example(n=13)  # sqrt 13 = 3.61: round 4, floor 3
@example(n=16)  # a square
@example(n=400)
def test_plan_has_round_sqrt_segments(candidate, n):
    """Without a budget: k = round(sqrt(n)) segments of as-equal-as-possible length, longer ones first."""
    where = ah.snippet(PLAN, n)
    bounds = ah.call(candidate.checkpoint.plan, PLAN, n)
    check_plan(bounds, n, where)
    ah.assert_equal(bounds, boundaries(n, round(math.sqrt(n))), name="plan", where=where)


@pytest.mark.needs(PLAN)
@given(n=st.integers(1, 400))
@example(n=1)
@example(n=2)
@example(n=7)
@example(n=13)
@example(n=400)
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


# the worked example, one block, a budget exactly the least memory (7 blocks: 3 + 3 = 2 + 4 = 6), one large
# enough for a single segment (n + 1), and a tight budget where fewer segments come within one block of it: 11
# blocks fit 7 only as 3 segments of 4, 4, 3 (or 4 of 3, 3, 3, 2), while 2 segments of 6 and 5 need 8. It shows
# the usual ways of overshooting a budget: the longest segment counted as n // k rather than ceil(n / k) (2 + 5
# looks like 7), or the n % k = 2 leftover blocks piled onto one segment (3, 3, 5 needs 8)
BUDGETS = [(16, 9), (1, 2), (7, least_memory(7)), (10, 11), (11, least_memory(11))]


def budget_examples(test):
    for case in BUDGETS:
        test = example(case=case)(test)
    return test


@pytest.mark.needs(PLAN)
@given(case=budget_cases())
@budget_examples
def test_plan_fits_the_budget(candidate, case):
    """With a memory budget (units of one block's activations), the plan's memory is within it."""
    n, budget = case
    where = ah.snippet(PLAN, n, memory_budget=budget)
    bounds = ah.call(candidate.checkpoint.plan, PLAN, n, memory_budget=budget)
    check_plan(bounds, n, where)
    assert plan_memory(bounds, n) <= budget, f"plan {bounds} needs {plan_memory(bounds, n)} > budget {budget} [{where}]"


@pytest.mark.needs(PLAN)
@given(case=budget_cases())
@budget_examples
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
@example(n=2, short=1)  # 2 blocks need 3: a budget of 2
@example(n=16, short=1)  # 7, one below the worked example's 8
def test_plan_rejects_budget_below_least_memory(candidate, n, short):
    budget = least_memory(n) - short
    if budget <= 0:
        budget = 0.5
    with pytest.raises(ValueError, match=r"\bmemory_budget\b"):
        candidate.checkpoint.plan(n, memory_budget=budget)


@pytest.mark.needs(PLAN)
@pytest.mark.parametrize("n, error", [(0, ValueError), (-3, ValueError), (2.5, (ValueError, TypeError))],
                         ids=["zero", "negative", "float"])
def test_plan_bad_n_blocks_raise_value_error(candidate, n, error):
    """``n_blocks`` below 1: ValueError naming it; a non-int may raise TypeError instead."""
    with pytest.raises(error, match=r"\bn_blocks\b"):
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


# three heads of 2 with dropout, one sequence of three; one head, seven positions, no dropout
BLOCKS = [dict(B=1, T=3, heads=3, d=6, p=0.3, seed=0), dict(B=2, T=7, heads=1, d=2, p=0.0, seed=1)]


def make_block(case) -> tiny_gpt.Block:
    with torch.random.fork_rng():
        torch.manual_seed(case["seed"])
        return tiny_gpt.Block(tiny_gpt.Config(d=case["d"], n_heads=case["heads"], dropout=case["p"]))


@pytest.mark.needs(SELECTIVE)
@given(case=block_cases(), which=st.sampled_from(list(PREDICATES)))
@example(case=BLOCKS[0], which="attention")
@example(case=BLOCKS[0], which="everything")  # dropout recomputed: the replay must draw the same masks
@example(case=BLOCKS[1], which="everything")
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
@example(case=BLOCKS[0])
@example(case=BLOCKS[1])
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
@example(case=BLOCKS[0])
@example(case=BLOCKS[1])
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
    """A ``recompute`` that is not callable (a name, as the first contract draft had it): TypeError naming it."""
    block = make_block(dict(d=4, heads=2, p=0.0, seed=0))
    with pytest.raises(TypeError, match=r"\brecompute\b"):
        candidate.checkpoint.checkpoint_selective(block, ss.randn((1, 3, 4), 0), "attention")


@pytest.mark.needs(SELECTIVE)
@pytest.mark.parametrize("which", ["attention", "everything"])
def test_selective_frees_everything_after_backward(candidate, which):
    """A training step through the block leaves nothing behind once its output and gradients are dropped:
    the forward pass, the graph and the rematerialized tensors are all freed (a graph kept alive by a
    reference cycle through autograd's nodes leaks a whole forward pass per step)."""
    case = BLOCKS[0]
    block = make_block(case)
    B, T, d = case["B"], case["T"], case["d"]
    x, cot = ss.randn((B, T, d), 0).requires_grad_(), ss.randn((B, T, d), 1)
    params = list(block.parameters())
    with torch.random.fork_rng(), mem.held_tensors() as held:
        for _ in range(3):
            y = ah.call(candidate.checkpoint.checkpoint_selective, SELECTIVE, block, x, PREDICATES[which](T))
            grads = torch.autograd.grad(y, [x, *params], cot)
    del y, grads
    left = held.elements()
    assert left == 0, (f"{left} elements of three training steps still alive after their outputs and gradients "
                       f"were dropped [{ah.snippet(SELECTIVE, 'Block', x, f'<recompute {which}>')}]")
