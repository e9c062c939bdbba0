"""collectives: AllReduce, ReduceScatter, AllGather, Reduce, Broadcast on point-to-point messages, and
data-parallel training (spec: docs/spec/collectives.md; reference: reference/collectives.py).

The candidate runs in worker processes, one per rank, in a torch.distributed process group on 127.0.0.1
that the suite starts and reuses (suites/_collectives_helpers.py): gloo on the CPU, or nccl with one GPU
per rank where there is a GPU for every rank (``FMSPEC_COLLECTIVES_BACKEND=gloo|nccl`` chooses;
``FMSPEC_COLLECTIVES_WORLD`` sets the number of workers, 4 by default, and a test or example that needs
more ranks is skipped). This process draws the inputs (hypothesis: examples replay as usual) on the CPU
and judges what every rank returns.

Oracles: the reduction of the ranks' inputs in float64 (exactly, in int64, for integers), computed here;
torch.distributed's own collective on the same inputs, in the same dtype, as the baseline of rounding;
the bytes each rank sent, counted by the communicator, against the ring's bounds; for DDP, one process
training on the concatenated batch with the mean loss, in float64.
"""

from __future__ import annotations

import re

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fmspec.suites import _collectives_helpers as ch
from fmspec.suites._collectives_helpers import pool, ranks  # noqa: F401  fixtures
from fmspec.suites import asserts as ah
from fmspec.suites import strategies as ss

pytestmark = pytest.mark.component("collectives")
AR, NAR, RD, BC = "collectives.all_reduce", "collectives.naive_all_reduce", "collectives.reduce", "collectives.broadcast"
AG, RS, DDP = "collectives.all_gather", "collectives.reduce_scatter", "collectives.DistributedDataParallel"
SO = "collectives.ShardedOptimizer"

# every dtype is data to move and add: drawn, not declared (no CAPABILITIES needed); bfloat16 sums are
# judged against torch.distributed's own bfloat16 sum as the baseline of rounding
dtypes = st.sampled_from([torch.float32, torch.float64, torch.bfloat16, torch.int64])
worlds = ch.worlds_upto(2, 3, 4)  # those the pool has ranks for
shapes = st.lists(ss.sizes(0, 6), max_size=3).map(tuple)  # numel 0..216: scalars, empty, not divisible by N
ops = st.sampled_from(ch.OPS)
BAD_INPUT_TIMEOUT = 5.0  # seconds: a right answer takes milliseconds; a candidate that hangs costs this
# an example is a call on up to 4 processes (tens of milliseconds on a loaded 2-core machine): half the
# profile's examples per property, a fifth for a DDP training run (hundreds of milliseconds)
few = settings(max_examples=max(5, settings().max_examples // 2))
ddp_settings = settings(max_examples=max(3, settings().max_examples // 5))


# ---------------------------------------------------------------------------------------------- fixtures
# the pool and ranks fixtures: _collectives_helpers (shared with the other collectives module)


# ------------------------------------------------------------------------------------ worked example
# rank r holds x_r[c] = (c + 1)·10^r; each partial sum's digits say which ranks it holds (3003 = a2 + d2)
RING_SENT = {  # the six payloads each rank sends to rank r + 1: ReduceScatter steps 0-2, then AllGather 0-2
    0: [4, 3003, 2202, 1111, 4444, 3333],
    1: [10, 44, 3033, 2222, 1111, 4444],
    2: [200, 110, 444, 3333, 2222, 1111],
    3: [3000, 2200, 1110, 4444, 3333, 2222],
}


@pytest.mark.smoke
@pytest.mark.needs(AR)
@pytest.mark.capability("p2p")
def test_ring_worked_example(candidate, ranks):
    """The lecture's ring on 4 ranks with one element per chunk: rank 0 holds a = [1, 2, 3, 4], rank 1
    b = [10, 20, 30, 40], rank 2 c = [100, ...], rank 3 d = [1000, ...]. ReduceScatter: at step s rank r
    sends chunk (r - 1 - s) mod 4 to rank r + 1 (rank 0: a3 = 4, then a2 + d2 = 3003, then a1 + d1 + c1 =
    2202); AllGather: the complete chunks (rank 0: 1111, 4444, 3333). Every rank ends with [1111, 2222,
    3333, 4444]."""
    xs = [torch.tensor([(c + 1) * 10**r for c in range(4)], dtype=torch.float64) for r in range(4)]
    what = ch.where(AR, xs, op="sum")
    res = ch.results(ranks, AR, xs, what, op="sum", trace=True, oracle=False)
    for rank, r in enumerate(res):
        ah.assert_equal(r["out"], torch.tensor([1111.0, 2222.0, 3333.0, 4444.0], dtype=torch.float64),
                        name=f"rank {rank}'s result", where=what)
        sent = [(dst, payload.tolist()) for dst, payload in r["sent"]]
        ah.assert_equal(sent, [((rank + 1) % 4, [float(v)]) for v in RING_SENT[rank]],
                        name=f"rank {rank}'s messages (to rank, values)", where=what)


# -------------------------------------------------------------------------------------------- AllReduce
@pytest.mark.smoke
@pytest.mark.needs(AR)
@few
@given(dtype=dtypes, world=worlds, shape=shapes, op=ops, seed=ss.seeds())
@example(dtype=torch.float32, world=4, shape=(10,), op="sum", seed=0)
@example(dtype=torch.bfloat16, world=3, shape=(), op="mean", seed=1)
@example(dtype=torch.int64, world=2, shape=(0, 3), op="max", seed=2)
@example(dtype=torch.float64, world=3, shape=(7,), op="min", seed=3)  # 3 ranks, 7 = 3 + 2 + 2
@example(dtype=torch.float32, world=4, shape=(2,), op="mean", seed=4)  # fewer elements than ranks: empty chunks
@example(dtype=torch.bfloat16, world=1, shape=(3, 2), op="sum", seed=5)  # one rank
def test_all_reduce_matches_oracle(candidate, ranks, dtype, world, shape, op, seed):
    """Every rank gets op over the ranks' tensors, the same bits on every rank (replicas must not drift),
    any shape (scalars, empty, sizes not divisible by N); the inputs are unchanged."""
    xs, op, res, what = ch.reduction_call(ranks, AR, dtype, world, shape, op, seed)
    expected = ch.reduce_oracle(xs, op)
    for rank, r in enumerate(res):
        ch.check_reduction(r["out"], expected, xs, op, r.get("torch"), name=f"rank {rank}'s result", where=what)
    ch.assert_same_on_every_rank(res, name="result", where=what)


@pytest.mark.needs(AR)
@pytest.mark.capability("p2p")
@few
@given(world=worlds, numel=st.integers(0, 2000), seed=ss.seeds())
@example(world=3, numel=600, seed=0)
@example(world=4, numel=1001, seed=0)
@example(world=4, numel=3, seed=1)  # fewer elements than ranks
@example(world=1, numel=5, seed=2)  # one rank sends nothing
def test_all_reduce_bandwidth(candidate, ranks, world, numel, seed):
    """Counted by the communicator: each rank sends at most 2(N-1)·ceil(S/N) elements (the ring's
    2(N-1)/N·S) and the ranks together at least 2(N-1)·S (no all-reduce sends less: Patarasuk & Yuan).
    Gathering everything on one rank passes the values but makes that rank send (N-1)·S."""
    _, res, what = ch.plain_call(ranks, AR, torch.float32, world, (numel,), seed, op="sum")
    most, least = ch.ring_bytes(numel, world, 4)
    ch.assert_sent(res, most, least, what, most_is="2(N-1)·ceil(S/N)·4", least_is="2(N-1)·S·4")


@pytest.mark.needs(NAR)
@few
@given(dtype=dtypes, world=worlds, shape=shapes, op=ops, seed=ss.seeds())
@example(dtype=torch.float64, world=4, shape=(10,), op="sum", seed=0)
@example(dtype=torch.float32, world=3, shape=(2, 5), op="mean", seed=1)
@example(dtype=torch.int64, world=1, shape=(4,), op="max", seed=2)
def test_naive_all_reduce_matches_oracle(candidate, ranks, dtype, world, shape, op, seed):
    """"Reduce to rank 0, then send it back": the same result as all_reduce on every rank."""
    xs, op, res, what = ch.reduction_call(ranks, NAR, dtype, world, shape, op, seed)
    expected = ch.reduce_oracle(xs, op)
    for rank, r in enumerate(res):
        ch.check_reduction(r["out"], expected, xs, op, r.get("torch"), name=f"rank {rank}'s result", where=what)
    ch.assert_same_on_every_rank(res, name="result", where=what)


# ---------------------------------------------------------------------------------------- ReduceScatter
@pytest.mark.needs(RS)
@few
@given(dtype=dtypes, world=worlds, shape=shapes, op=ops, seed=ss.seeds())
@example(dtype=torch.float32, world=4, shape=(10,), op="sum", seed=0)
@example(dtype=torch.bfloat16, world=3, shape=(2,), op="mean", seed=1)
@example(dtype=torch.float64, world=3, shape=(7,), op="sum", seed=2)  # chunks of 3, 2, 2
@example(dtype=torch.int64, world=4, shape=(3,), op="max", seed=3)  # rank 3's chunk is empty
@example(dtype=torch.float32, world=1, shape=(2, 3), op="sum", seed=4)  # one rank: the whole tensor, flat
def test_reduce_scatter_matches_oracle(candidate, ranks, dtype, world, shape, op, seed):
    """Rank r gets chunk r (1-d) of the reduced, flattened tensor, chunks cut by torch.tensor_split's rule
    (the first S mod N chunks one element longer)."""
    xs, op, res, what = ch.reduction_call(ranks, RS, dtype, world, shape, op, seed)
    chunks = torch.tensor_split(ch.reduce_oracle(xs, op).reshape(-1), world)
    for rank, r in enumerate(res):
        ch.check_reduction(r["out"], chunks[rank], xs, op, r.get("torch"), name=f"rank {rank}'s chunk", where=what)


@pytest.mark.needs(RS)
@pytest.mark.capability("p2p")
@few
@given(world=worlds, numel=st.integers(0, 2000), seed=ss.seeds())
@example(world=3, numel=600, seed=0)
@example(world=4, numel=3, seed=1)
@example(world=3, numel=1001, seed=2)
@example(world=1, numel=5, seed=3)
def test_reduce_scatter_bandwidth(candidate, ranks, world, numel, seed):
    """Each rank sends at most (N-1)·ceil(S/N) elements, the ranks together at least (N-1)·S: half an
    all-reduce (an all-reduce followed by keeping one chunk sends twice that)."""
    _, res, what = ch.plain_call(ranks, RS, torch.float32, world, (numel,), seed, op="sum")
    most, least = (b // 2 for b in ch.ring_bytes(numel, world, 4))
    ch.assert_sent(res, most, least, what, most_is="(N-1)·ceil(S/N)·4", least_is="(N-1)·S·4")


# -------------------------------------------------------------------------------------------- AllGather
@pytest.mark.needs(AG)
@few
@given(dtype=dtypes, world=worlds, shape=shapes, seed=ss.seeds())
@example(dtype=torch.int64, world=4, shape=(3,), seed=0)
@example(dtype=torch.bfloat16, world=3, shape=(), seed=1)  # scalars, 3 ranks
@example(dtype=torch.float32, world=1, shape=(2, 2), seed=2)  # one row
def test_all_gather_matches_oracle(candidate, ranks, dtype, world, shape, seed):
    """Every rank gets (N, *shape) with row i = rank i's tensor, exactly."""
    xs, res, what = ch.plain_call(ranks, AG, dtype, world, shape, seed)
    expected = torch.stack(xs)
    for rank, r in enumerate(res):
        ah.assert_tensor(r["out"], tuple(expected.shape), dtype, name=f"rank {rank}'s result", where=what)
        ah.assert_equal(r["out"], expected, name=f"rank {rank}'s result", where=what)


@pytest.mark.needs(AG)
@pytest.mark.capability("p2p")
@few
@given(world=worlds, numel=st.integers(0, 600), seed=ss.seeds())
@example(world=3, numel=200, seed=0)
@example(world=1, numel=5, seed=1)
@example(world=4, numel=0, seed=2)  # nothing to send
def test_all_gather_bandwidth(candidate, ranks, world, numel, seed):
    """Each rank sends at most (N-1)·S elements; every rank must receive the N-1 others' rows, so the ranks
    together send at least N(N-1)·S (gathering on one rank and broadcasting makes it send N(N-1)·S)."""
    _, res, what = ch.plain_call(ranks, AG, torch.float32, world, (numel,), seed)
    most, least = (world - 1) * numel * 4, world * (world - 1) * numel * 4
    ch.assert_sent(res, most, least, what, most_is="(N-1)·S·4", least_is="N(N-1)·S·4")


@pytest.mark.needs(RS, AG, AR)
@few
@given(world=worlds, rows=ss.sizes(1, 3), per_rank=ss.sizes(0, 5), seed=ss.seeds())
@example(world=4, rows=1, per_rank=2, seed=0)
@example(world=3, rows=2, per_rank=3, seed=1)
@example(world=1, rows=2, per_rank=3, seed=2)
def test_reduce_scatter_then_all_gather_equals_all_reduce(candidate, ranks, world, rows, per_rank, seed):
    """all_gather(reduce_scatter(x)) holds the rows of all_reduce(x) (S divisible by N, so every chunk has
    the same length), in float32, within rounding of each other."""
    shape = (rows, world * per_rank)
    xs = ch.inputs(world, shape, torch.float32, seed)
    what = ch.where(RS, xs, seed, op="sum") + ", then all_gather of each rank's chunk"
    scattered = [r["out"] for r in ch.results(ranks, RS, xs, what, op="sum", oracle=False)]
    gathered = ch.results(ranks, AG, scattered, what, oracle=False)
    reduced = ch.results(ranks, AR, xs, what, op="sum", oracle=False)
    for rank in range(world):
        composed = gathered[rank]["out"].reshape(shape)
        ah.assert_close(composed, reduced[rank]["out"].double(), dtype=torch.float32, n=world,
                        scale=ch.terms_scale(xs), name=f"rank {rank}: all_gather(reduce_scatter(x)) vs all_reduce(x)",
                        where=what)


# ---------------------------------------------------------------------------------------- Reduce, Broadcast
@pytest.mark.needs(RD)
@few
@given(dtype=dtypes, world=worlds, shape=shapes, op=ops, root=st.integers(0, 3), seed=ss.seeds())
@example(dtype=torch.float64, world=4, shape=(5,), op="sum", root=2, seed=0)
@example(dtype=torch.float32, world=3, shape=(7,), op="mean", root=1, seed=1)  # 3 ranks, root 1
@example(dtype=torch.int64, world=1, shape=(3,), op="min", root=0, seed=2)
def test_reduce_matches_oracle(candidate, ranks, dtype, world, shape, op, root, seed):
    """The root gets op over the ranks' tensors; every other rank gets None."""
    root = root % world
    xs, op, res, what = ch.reduction_call(ranks, RD, dtype, world, shape, op, seed, root=root)
    ch.check_reduction(res[root]["out"], ch.reduce_oracle(xs, op), xs, op, res[root].get("torch"),
                    name=f"root {root}'s result", where=what)
    for rank, r in enumerate(res):
        if rank != root:
            assert r["out"] is None, f"rank {rank} (not the root) returned {ah.describe(r['out'])}, expected None [{what}]"


@pytest.mark.needs(BC)
@few
@given(dtype=dtypes, world=worlds, shape=shapes, root=st.integers(0, 3), seed=ss.seeds())
@example(dtype=torch.bfloat16, world=4, shape=(5,), root=3, seed=0)
@example(dtype=torch.float64, world=3, shape=(2, 3), root=1, seed=1)
@example(dtype=torch.int64, world=1, shape=(4,), root=0, seed=2)
def test_broadcast_matches_oracle(candidate, ranks, dtype, world, shape, root, seed):
    """Every rank gets a copy of the root's tensor, exactly; the other ranks' tensors (same shape and dtype,
    other values) only say what to receive."""
    root = root % world
    xs, res, what = ch.plain_call(ranks, BC, dtype, world, shape, seed, root=root)
    for rank, r in enumerate(res):
        ah.assert_tensor(r["out"], shape, dtype, name=f"rank {rank}'s result", where=what)
        ah.assert_equal(r["out"], xs[root], name=f"rank {rank}'s result", where=what)


# ------------------------------------------------------------------------------- edge cases, bad input
FUNCTIONS = [pytest.param(AR, {"op": "sum"}, marks=pytest.mark.needs(AR), id="all_reduce"),
             pytest.param(NAR, {"op": "sum"}, marks=pytest.mark.needs(NAR), id="naive_all_reduce"),
             pytest.param(RS, {"op": "sum"}, marks=pytest.mark.needs(RS), id="reduce_scatter"),
             pytest.param(AG, {}, marks=pytest.mark.needs(AG), id="all_gather"),
             pytest.param(RD, {"op": "sum", "root": 0}, marks=pytest.mark.needs(RD), id="reduce"),
             pytest.param(BC, {"root": 0}, marks=pytest.mark.needs(BC), id="broadcast")]


@pytest.mark.parametrize("fn, kwargs", FUNCTIONS)
def test_world_size_one_is_identity(candidate, ranks, fn, kwargs):
    """One rank: every collective returns a copy of the input (all_gather: one row; reduce_scatter: the
    whole flattened tensor) and sends nothing; nothing waits for a rank that is not there."""
    x = ss.randn((2, 3), 7)
    what = ch.where(fn, [x], **kwargs)
    res = ch.results(ranks, fn, [x], what, oracle=False, **kwargs)
    expected = {AG: x[None], RS: x.reshape(-1)}.get(fn, x)
    ah.assert_equal(res[0]["out"], expected, name="result", where=what)
    assert res[0]["bytes_sent"] == 0, f"one rank sent {res[0]['bytes_sent']} bytes (to itself?) [{what}]"


def _bad(case: str, fn: str, kwargs: dict, world: int) -> tuple[list, list[dict]]:
    """Each rank's tensor and arguments for one bad-input case."""
    xs = [ss.randn((5,), r) for r in range(world)]
    per = [dict(kwargs) for _ in range(world)]
    if case == "shapes differ":
        xs[0] = ss.randn((4,), 0)
    elif case == "dtypes differ":
        xs[0] = xs[0].float()
    elif case == "unknown op":
        for k in per:
            k["op"] = "prod"
    elif case == "op differs on one rank":
        per[1]["op"] = "avg"
    elif case == "mean of integers":
        xs = [torch.arange(5) + r for r in range(world)]
        for k in per:
            k["op"] = "mean"
    elif case == "root out of range":
        for k in per:
            k["root"] = world
    return xs, per


BAD_KWARGS = {AR: {"op": "sum"}, RS: {"op": "sum"}, AG: {}, RD: {"op": "sum", "root": 0}, BC: {"root": 0}}
WITH_OP = ["shapes differ", "dtypes differ", "unknown op", "op differs on one rank", "mean of integers"]
BAD_CASES = {AR: WITH_OP, RS: WITH_OP, AG: ["shapes differ", "dtypes differ"], RD: [*WITH_OP, "root out of range"],
             BC: ["shapes differ", "dtypes differ", "root out of range"]}
NAMED = {"shapes differ": r"\bshapes?\b", "dtypes differ": r"\bdtypes?\b", "unknown op": r"\bop\b",
         "op differs on one rank": r"\bop\b", "mean of integers": r"\b(op|tensor|dtype)\b",
         "root out of range": r"\broot\b"}  # case -> what the message must name


@pytest.mark.parametrize("fn, case", [pytest.param(fn, case, marks=pytest.mark.needs(fn),
                                                   id=f"{fn.rpartition('.')[2]}-{case.replace(' ', '_')}")
                                      for fn, cases in BAD_CASES.items() for case in cases])
def test_bad_arguments_raise_on_every_rank(candidate, ranks, fn, case):
    """Shapes or dtypes that differ across ranks, an unknown op (on every rank, or on one), op="mean" on
    integers, a root outside the world: ValueError or TypeError on *every* rank, within a few seconds,
    never a hang (a rank that raised alone would leave the others waiting for its messages); the message
    names what is wrong (the shape, the dtype, op, root). Three ranks (two where the pool has two)."""
    ch.need_ranks(ranks.pool, 2)
    world = min(3, ranks.pool.size)
    xs, per = _bad(case, fn, BAD_KWARGS[fn], world)
    what = f"{ch.where(fn, xs, **per[0])}: {case}"
    res = ranks.collective(fn.rpartition(".")[2], xs, per_rank=per, what=what, timeout=BAD_INPUT_TIMEOUT)
    for r in res:
        if r.get("error", {}).get("type") == "NotImplementedError":
            raise NotImplementedError(r["error"]["message"])
    for rank, r in enumerate(res):
        err = r.get("error")
        assert err is not None, f"rank {rank} returned {ah.describe(r.get('out'))} instead of raising [{what}]"
        assert err["type"] in ("ValueError", "TypeError"), (
            f"rank {rank} raised {err['type']}: {err['message']}; expected ValueError or TypeError [{what}]")
        assert re.search(NAMED[case], err["message"]), (
            f"rank {rank} raised {err['type']}: {err['message']!r}, which does not match {NAMED[case]!r} (the "
            f"argument that is wrong) [{what}]")


# ----------------------------------------------------------------------------------------------------- DDP
ddp_worlds = ch.worlds_upto(1, 2, 3, 4)
caps = st.sampled_from([1, 64, 200, 2**20])  # bytes; 1 puts every parameter in a bucket of its own


@pytest.mark.smoke
@pytest.mark.needs(DDP)
@ddp_settings
@given(world=ddp_worlds, seed=ss.seeds())
@example(world=3, seed=0)
@example(world=1, seed=1)
def test_ddp_broadcasts_at_construction(candidate, ranks, world, seed):
    """Each rank builds the model with its own random weights and its own buffer; after construction every
    parameter and buffer, frozen ones included, is rank 0's, exactly, on every rank."""
    run = ch.run_ddp(ranks, dict(frozen=True, unused=True), world, seed, steps=0, batch=1)
    for rank, r in enumerate(run.res):
        for name, value in run.states[0].items():
            ah.assert_equal(r["constructed"][name], value, name=f"{name} on rank {rank} after construction",
                            where=run.what)


@pytest.mark.needs(DDP)
@ddp_settings
@given(world=ddp_worlds, steps=st.integers(1, 2), batch=ss.sizes(1, 3), cap=caps, seed=ss.seeds())
@example(world=4, steps=2, batch=2, cap=64, seed=0)
@example(world=1, steps=2, batch=1, cap=1, seed=1)  # one rank: plain SGD
@example(world=3, steps=1, batch=3, cap=200, seed=2)
def test_ddp_matches_single_process(candidate, ranks, world, steps, batch, cap, seed):
    """After k SGD steps every rank holds the same parameters, equal to one process training on the
    concatenation of every rank's batch with the mean loss (the mean of the ranks' mean losses: the
    gradients are averaged, not summed), for any bucket size."""
    ch.assert_trained_like_one_process(ch.run_ddp(ranks, {}, world, seed, steps, batch, bucket_cap_bytes=cap))


@pytest.mark.needs(DDP)
@ddp_settings
@given(world=ddp_worlds, steps=st.integers(1, 2), cap=caps, seed=ss.seeds())
@example(world=3, steps=2, cap=1, seed=0)
def test_ddp_frozen_parameters_never_change(candidate, ranks, world, steps, cap, seed):
    """A frozen layer (requires_grad=False) gets no gradient and keeps rank 0's initial values on every rank;
    the rest trains as one process would."""
    run = ch.run_ddp(ranks, dict(frozen=True), world, seed, steps, 2, bucket_cap_bytes=cap)
    for rank, r in enumerate(run.res):
        for name in ("frozen.weight", "frozen.bias"):
            assert r["grads"][name] is None, f"{name} has a gradient on rank {rank} [{run.what}]"
            ah.assert_equal(r["final"][name], run.states[0][name], name=f"{name} on rank {rank} after training",
                            where=run.what)
    ch.assert_trained_like_one_process(run)


@pytest.mark.needs(DDP)
@ddp_settings
@given(world=ddp_worlds, steps=st.integers(1, 2), cap=caps, seed=ss.seeds())
@example(world=4, steps=2, cap=2**20, seed=0)
def test_ddp_tied_weights_averaged_once(candidate, ranks, world, steps, cap, seed):
    """The output head shares the embedding's weight: one parameter used by two modules, whose gradient
    (the sum of both uses) is averaged once, as one process would step it."""
    ch.assert_trained_like_one_process(ch.run_ddp(ranks, dict(tied=True), world, seed, steps, 2, bucket_cap_bytes=cap))


@pytest.mark.needs(DDP)
@ddp_settings
@given(world=ddp_worlds, micro=st.integers(2, 3), steps=st.integers(1, 2), cap=caps, seed=ss.seeds())
@example(world=3, micro=2, steps=2, cap=64, seed=0)
def test_ddp_no_sync_accumulates(candidate, ranks, world, micro, steps, cap, seed):
    """Gradient accumulation: every micro-batch but the last runs inside no_sync(), which sends nothing; the
    last backward averages the accumulated sums, so each step equals one process's on all micro-batches of
    all ranks (each micro-batch's loss divided by their number)."""
    run = ch.run_ddp(ranks, {}, world, seed, steps, 2, micro=micro, bucket_cap_bytes=cap)
    for rank, r in enumerate(run.res):
        for step, sent in enumerate(r["sent"]):
            assert not any(sent[:-1]), (f"rank {rank} sent {sent[:-1]} bytes during the no_sync() backward passes of "
                                        f"step {step}, expected none [{run.what}]")
    ch.assert_trained_like_one_process(run)


@pytest.mark.needs(DDP)
@ddp_settings
@given(world=ddp_worlds, steps=st.integers(1, 2), cap=caps, seed=ss.seeds())
@example(world=4, steps=1, cap=1, seed=0)
def test_ddp_unused_parameters_do_not_hang(candidate, ranks, world, steps, cap, seed):
    """A layer forward never calls gets no gradient on any rank: backward does not wait for it, its
    gradient stays None and its values stay rank 0's; the rest trains as one process would."""
    run = ch.run_ddp(ranks, dict(unused=True), world, seed, steps, 2, bucket_cap_bytes=cap)
    for rank, r in enumerate(run.res):
        for name in ("unused.weight", "unused.bias"):
            assert r["grads"][name] is None, f"{name} has a gradient on rank {rank}, expected None [{run.what}]"
    ch.assert_trained_like_one_process(run)


@pytest.mark.needs(DDP)
@pytest.mark.capability("p2p")
@ddp_settings
@given(world=ddp_worlds, tied=st.booleans(), frozen=st.booleans(), unused=st.booleans(), cap=caps, seed=ss.seeds())
@example(world=4, tied=False, frozen=True, unused=True, cap=1, seed=0)
@example(world=3, tied=True, frozen=True, unused=True, cap=64, seed=1)
@example(world=1, tied=True, frozen=False, unused=False, cap=1, seed=2)  # one rank sends nothing
def test_ddp_each_bucket_reduced_once(candidate, ranks, world, tied, frozen, unused, cap, seed):
    """A synced backward sends, over all ranks, exactly 2(N-1)·P·8 bytes, P the elements of the trainable
    parameters that got a gradient: every bucket all-reduced once by a ring (each gradient once, none of
    the frozen or unused ones), whatever the bucket size."""
    config = dict(tied=tied, frozen=frozen, unused=unused)
    run = ch.run_ddp(ranks, config, world, seed, 2, 2, bucket_cap_bytes=cap)
    elements = sum(g.numel() for g in run.grads.values() if g is not None)
    expected = 2 * (world - 1) * elements * 8
    for step in range(2):
        sent = [r["sent"][step][-1] for r in run.res]
        assert sum(sent) == expected, (f"step {step}: the ranks sent {sum(sent)} bytes during backward (by rank: "
                                       f"{sent}), expected 2(N-1)·P·8 = {expected} for P = {elements} gradient "
                                       f"elements [{run.what}]")


# ------------------------------------------------------------------------- second tier: sharded optimizer
@pytest.mark.needs(DDP, SO)
@ddp_settings
@given(world=ddp_worlds, steps=st.integers(1, 3), tied=st.booleans(), seed=ss.seeds())
@example(world=4, steps=2, tied=False, seed=0)
@example(world=3, steps=2, tied=True, seed=1)  # 3 owners of 4 parameters
@example(world=1, steps=1, tied=False, seed=2)
def test_sharded_optimizer_matches_adamw(candidate, ranks, world, steps, tied, seed):
    """DDP's averaged gradients, then ShardedOptimizer(params, comm, torch.optim.AdamW, lr=0.05,
    weight_decay=0.1): after k steps every rank holds the same parameters, equal (float64) to one process
    stepping torch.optim.AdamW on the concatenated batch."""
    ch.assert_trained_like_one_process(ch.run_ddp(ranks, dict(tied=tied), world, seed, steps, 2, sharded=True))


@pytest.mark.needs(DDP, SO)
@ddp_settings
@given(world=worlds, seed=ss.seeds())
@example(world=4, seed=0)
@example(world=3, seed=1)
def test_sharded_optimizer_state_is_divided(candidate, ranks, world, seed):
    """Each rank keeps the AdamW state (two moments and a step count) of its own parameters only: the ranks'
    states add up to one AdamW's, and no rank holds more than 1/N of it plus the largest parameter's share
    (measured: the tensors in the state of every torch.optim.Optimizer the object holds)."""
    run = ch.run_ddp(ranks, {}, world, seed, 1, 2, sharded=True)
    held, shares, what = [r["state_bytes"] for r in run.res], run.shares, run.what
    whole = sum(shares)
    assert sum(held) == whole, (f"the ranks' optimizer states hold {sum(held)} bytes in all (by rank: {held}), "
                                f"one AdamW holds {whole}: the state must be split, each parameter's on one rank [{what}]")
    bound = whole / world + max(shares)
    assert max(held) <= bound, (f"a rank holds {max(held)} bytes of optimizer state (by rank: {held}), more than "
                                f"1/N of AdamW's {whole} plus the largest parameter's {max(shares)} [{what}]")
