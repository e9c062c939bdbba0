"""Collectives on point-to-point messages, and data-parallel training (lecture 003, "What do large models
run on?": NCCL's communication primitives and "Multi GPU Training: DDP").

Every function here is *collective*: each of the N ranks calls it with its own tensor and the same other
arguments, and ``comm`` (handed over by whoever started the processes) carries the messages::

    comm.rank, comm.world_size             this process is rank r of N
    comm.send(t, dst), comm.recv(t, src)   blocking point-to-point messages (recv fills t)
    comm.isend(t, dst) -> work             asynchronous send; work.wait()
    comm.all_gather_object(obj) -> list    a small metadata exchange (shapes, dtypes), not for payload

=================  =====================================================  ===============================
function           every rank returns                                     bytes a rank sends (S elements)
=================  =====================================================  ===============================
all_reduce         op over the ranks' tensors, elementwise (the ring)     2·(N-1)/N·S (ReduceScatter +
                                                                          AllGather)
naive_all_reduce   the same, by "reduce to rank 0, then send it back"     rank 0: (N-1)·S
reduce_scatter     chunk ``rank`` of the reduced, flattened tensor         (N-1)/N·S
all_gather         the ranks' tensors stacked: (N, *shape)                (N-1)·S
reduce             root: the reduction; other ranks: None (binomial tree) at most S
broadcast          a copy of root's tensor (binomial tree)                at most ceil(log2 N)·S
=================  =====================================================  ===============================

``op`` is one of "sum", "mean", "max", "min" ("mean" = sum / N, floating tensors only). Inputs are never
modified. A flat tensor of S elements is cut into N chunks with ``torch.tensor_split``'s rule (the first
S % N chunks one element longer), so S need not divide by N, and S = 0 works.

The ring AllReduce (bandwidth-optimal: Patarasuk & Yuan 2009) is two phases of N - 1 steps. In every step
each rank sends one chunk to its right neighbour (r + 1) and receives one from its left (r - 1), so all
links are busy at once. N = 4, ranks hold a, b, c, d, each cut into chunks 0..3:

    Phase 1, ReduceScatter: at step s rank r sends chunk (r - 1 - s) mod N and adds the chunk
    (r - 2 - s) mod N it receives into its own copy.

                   chunk 0        chunk 1        chunk 2        chunk 3
    step 0  rank 0                               a2+d2  <-(3)
            rank 1                                              b3+a3  <-(0)
            rank 2 c0+b0  <-(1)
            rank 3                d1+c1  <-(2)
    step 1  rank 0                a1+d1+c1
            rank 1                               b2+a2+d2
            rank 2                                              c3+b3+a3
            rank 3 d0+c0+b0
    step 2  rank 0 a0+d0+c0+b0                                      rank r now holds chunk r summed
            rank 1                b1+a1+d1+c1                       over all ranks: Σ0, Σ1, Σ2, Σ3
            rank 2                               c2+b2+a2+d2
            rank 3                                              d3+c3+b3+a3

    Phase 2, AllGather: at step s rank r sends the complete chunk (r - s) mod N and stores the chunk
    (r - 1 - s) mod N it receives; after N - 1 steps every rank holds Σ0 Σ1 Σ2 Σ3.

            rank 0: Σ0 -> Σ0 Σ3 -> Σ0 Σ2 Σ3 -> Σ0 Σ1 Σ2 Σ3         (rank 1: Σ1 -> Σ0 Σ1 -> ...)

Each rank sends N - 1 chunks per phase: 2·(N-1)·S/N elements in all, nearly 2·S however many ranks
there are, where gathering everything on one rank makes that rank send (N-1)·S. Each chunk's sum is
formed on one rank and copied to the others, so every rank gets the same bits.

Worked example (the suite's): rank r holds x_r[c] = (c + 1)·10^r, so a = [1, 2, 3, 4], b = [10, 20, 30,
40], ... and every chunk's sum reads off which ranks it holds: rank 0 sends 4 (a3), then 3003 (a2+d2),
then 2202 (a1+d1+c1), then the complete chunks 1111, 4444, 3333; every rank ends with [1111, 2222,
3333, 4444].

Reduce and Broadcast use a binomial tree (latency log2 N instead of N - 1); for N = 8 and root 0::

    reduce:    step 1: 1->0 3->2 5->4 7->6    step 2: 2->0 6->4    step 3: 4->0
    broadcast: step 1: 0->4                   step 2: 0->2 4->6    step 3: 0->1 2->3 4->5 6->7

``DistributedDataParallel`` ("when a model fits on a single GPU, and we want to increase data
throughput"): every rank holds the whole model and a different part of the batch; the gradients are
averaged after backward, so every rank takes the same optimizer step, the one a single process would take
on the concatenated batch with the mean loss. Gradients are averaged in *buckets* (several parameters
flattened into one tensor, fewer and larger messages), each bucket launched as soon as its last gradient
is ready, so the communication of late layers overlaps the backward of early ones.

``ShardedOptimizer`` (ZeRO stage 1) keeps each parameter's optimizer state on one rank only: the ranks
step their own shards and broadcast the updated parameters, with the optimizer's memory divided by N.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import weakref
from typing import Any, Iterator

import torch
from torch import nn

OPS = ("sum", "mean", "max", "min")


# ------------------------------------------------------------------------------------------------ helpers
def chunk_bounds(numel: int, world_size: int) -> list[tuple[int, int]]:
    """[start, stop) of each of the N chunks of a flat tensor: the first numel % N chunks one element
    longer (``torch.tensor_split``'s rule). ``chunk_bounds(10, 4) == [(0, 3), (3, 6), (6, 8), (8, 10)]``;
    ``chunk_bounds(2, 4) == [(0, 1), (1, 2), (2, 2), (2, 2)]``."""
    base, extra = divmod(numel, world_size)
    bounds, start = [], 0
    for c in range(world_size):
        stop = start + base + (1 if c < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def _combine_(op: str, acc: torch.Tensor, incoming: torch.Tensor) -> None:
    """acc <- op(acc, incoming), in place (``acc`` is always our own buffer, never the caller's)."""
    if op in ("sum", "mean"):
        acc.add_(incoming)
    elif op == "max":
        torch.maximum(acc, incoming, out=acc)
    else:
        torch.minimum(acc, incoming, out=acc)


def _check(comm, name: str, tensor: Any, op: str | None = None, root: int | None = None) -> None:
    """Every rank checks every rank's arguments, after one small metadata exchange, so that bad input raises
    the same error on every rank: a rank that raised alone would leave the others waiting for its
    messages forever."""
    mine = {
        "shape": tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else None,
        "dtype": str(tensor.dtype).removeprefix("torch.") if isinstance(tensor, torch.Tensor) else type(tensor).__name__,
        "op": op if isinstance(op, str) or op is None else repr(op),
        "root": root if isinstance(root, int) or root is None else repr(root),
    }
    everyone = comm.all_gather_object(mine)
    for key in ("shape", "dtype", "op", "root"):
        values = [m[key] for m in everyone]
        if any(v != values[0] for v in values):
            shown = ", ".join(f"rank {r}: {v}" for r, v in enumerate(values))
            raise ValueError(f"{name}: {key} differs across ranks ({shown})")
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name}: tensor must be a torch.Tensor, got {type(tensor).__name__}")
    if op is not None:
        if op not in OPS:
            raise ValueError(f"{name}: op must be one of {', '.join(OPS)}; got {op!r}")
        if op == "mean" and not (tensor.is_floating_point() or tensor.is_complex()):
            raise TypeError(f"{name}: op='mean' needs a floating tensor, got {tensor.dtype}")
    if root is not None and (not isinstance(root, int) or isinstance(root, bool) or not 0 <= root < comm.world_size):
        raise ValueError(f"{name}: root must be a rank in [0, {comm.world_size}), got {root!r}")


def _exchange(comm, send: torch.Tensor, dst: int, recv: torch.Tensor, src: int) -> None:
    """Send ``send`` to dst while receiving into ``recv`` from src (one ring step). Empty chunks are not
    sent: both sides know every chunk's size."""
    work = comm.isend(send, dst) if send.numel() else None
    if recv.numel():
        comm.recv(recv, src)
    if work is not None:
        work.wait()


# ------------------------------------------------------------------------------------------- the ring
def _ring_reduce_scatter(comm, flat: torch.Tensor, op: str) -> None:
    """Phase 1, in place on ``flat`` (S,): afterwards chunk ``rank`` holds the reduction over all ranks."""
    n, r = comm.world_size, comm.rank
    right, left = (r + 1) % n, (r - 1) % n
    bounds = chunk_bounds(flat.numel(), n)
    scratch = flat.new_empty(bounds[0][1] - bounds[0][0])  # (ceil(S/N),): the largest chunk
    for s in range(n - 1):
        a, b = bounds[(r - 1 - s) % n]  # the partial sum this rank passes on
        c, d = bounds[(r - 2 - s) % n]  # the partial sum arriving from the left
        incoming = scratch[:d - c]  # (chunk,)
        _exchange(comm, flat[a:b], right, incoming, left)
        _combine_(op, flat[c:d], incoming)


def _ring_all_gather(comm, flat: torch.Tensor) -> None:
    """Phase 2, in place on ``flat`` (S,) whose chunk ``rank`` is complete: afterwards every chunk is."""
    n, r = comm.world_size, comm.rank
    right, left = (r + 1) % n, (r - 1) % n
    bounds = chunk_bounds(flat.numel(), n)
    for s in range(n - 1):
        a, b = bounds[(r - s) % n]
        c, d = bounds[(r - 1 - s) % n]
        _exchange(comm, flat[a:b], right, flat[c:d], left)  # received straight into place


def all_reduce(comm, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """The ring AllReduce: ReduceScatter, then AllGather. Returns a new tensor shaped like ``tensor``,
    bit-identical on every rank."""
    _check(comm, "all_reduce", tensor, op)
    n, r = comm.world_size, comm.rank
    flat = tensor.detach().reshape(-1).clone()  # (S,): our working copy; the input stays as it was
    _ring_reduce_scatter(comm, flat, op)
    if op == "mean":
        a, b = chunk_bounds(flat.numel(), n)[r]
        flat[a:b] /= n  # each chunk divided once, by its owner, before it travels
    _ring_all_gather(comm, flat)
    return flat.reshape(tensor.shape)


def reduce_scatter(comm, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """Phase 1 alone: rank r returns chunk r (1-d, ``chunk_bounds``) of the reduced, flattened tensor."""
    _check(comm, "reduce_scatter", tensor, op)
    n, r = comm.world_size, comm.rank
    flat = tensor.detach().reshape(-1).clone()  # (S,)
    _ring_reduce_scatter(comm, flat, op)
    a, b = chunk_bounds(flat.numel(), n)[r]
    mine = flat[a:b].clone()  # (chunk,)
    return mine / n if op == "mean" else mine


def all_gather(comm, tensor: torch.Tensor) -> torch.Tensor:
    """Phase 2 alone, one row per rank: returns (N, *tensor.shape) with row i = rank i's tensor."""
    _check(comm, "all_gather", tensor)
    n, r = comm.world_size, comm.rank
    out = tensor.detach().new_empty((n, *tensor.shape))
    out[r] = tensor.detach()
    rows = out.reshape(-1)  # (N·S,): row i is chunk i of an evenly cut flat tensor
    _ring_all_gather(comm, rows)
    return out


def naive_all_reduce(comm, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """For contrast: every rank sends its whole tensor to rank 0, which reduces them in rank order and
    sends the result to every rank. Rank 0 receives and sends (N-1)·S elements: N/2 times the ring's."""
    _check(comm, "naive_all_reduce", tensor, op)
    n, r = comm.world_size, comm.rank
    acc = tensor.detach().clone()
    if r == 0:
        incoming = torch.empty_like(acc)
        for src in range(1, n):
            comm.recv(incoming, src)
            _combine_(op, acc, incoming)
        if op == "mean":
            acc = acc / n
        for dst in range(1, n):
            comm.send(acc, dst)
    else:
        comm.send(acc, 0)
        comm.recv(acc, 0)
    return acc


# ----------------------------------------------------------------------------------- binomial trees
def reduce(comm, tensor: torch.Tensor, root: int = 0, op: str = "sum") -> torch.Tensor | None:
    """Binomial-tree Reduce: root returns the reduction (a new tensor), every other rank None.

    With v = (rank - root) mod N, at step k (mask = 2^k) a rank whose bit k is set sends its partial
    result to v - mask and is done; the others add what v + mask sends them."""
    _check(comm, "reduce", tensor, op, root)
    n, r = comm.world_size, comm.rank
    v = (r - root) % n
    acc = tensor.detach().clone()
    mask = 1
    while mask < n:
        if v & mask:
            comm.send(acc, (v - mask + root) % n)
            return None
        if v + mask < n:
            incoming = torch.empty_like(acc)
            comm.recv(incoming, (v + mask + root) % n)
            _combine_(op, acc, incoming)
        mask <<= 1
    return acc / n if op == "mean" else acc  # only root gets here


def broadcast(comm, tensor: torch.Tensor, root: int = 0) -> torch.Tensor:
    """Binomial-tree Broadcast: every rank returns a copy of root's tensor (the others pass a tensor of the
    same shape and dtype; its values are ignored).

    With v = (rank - root) mod N, a rank receives once, from v - 2^k where 2^k is v's lowest set bit,
    then forwards to v + 2^j for every j < k (root: for every 2^j < N), largest first."""
    _check(comm, "broadcast", tensor, root=root)
    n, r = comm.world_size, comm.rank
    v = (r - root) % n
    buf = tensor.detach().clone() if r == root else torch.empty_like(tensor)
    mask = 1
    while mask < n:
        if v & mask:
            comm.recv(buf, (v - mask + root) % n)
            break
        mask <<= 1
    mask >>= 1
    while mask > 0:
        if v + mask < n:
            comm.send(buf, (v + mask + root) % n)
        mask >>= 1
    return buf


# ------------------------------------------------------------------------------------------------- DDP
class DistributedDataParallel(nn.Module):
    """Data parallelism: ``module`` replicated on every rank, gradients averaged in buckets during backward.

    - At construction every parameter and buffer (frozen ones included) is overwritten with rank 0's, so
      all replicas start equal. ``module`` is wrapped, not copied.
    - Trainable parameters (each once, however many modules share it) are packed, in reverse registration
      order (roughly the order backward produces their gradients), into buckets of at most
      ``bucket_cap_bytes`` (a larger parameter gets a bucket of its own; one dtype per bucket).
    - ``forward`` runs the module and notes which parameters its output depends on (the autograd graph
      from the outputs back to the parameters): the parameters that will receive a gradient. Only those
      are averaged, so a parameter no rank used keeps ``grad = None`` and nothing waits for it. Every rank
      must use the same parameters in a step (as with torch's DDP).
    - During backward a hook after each gradient's accumulation counts down its bucket; a complete bucket
      is flattened and all-reduced ("mean") on a background thread, in bucket order on every rank. The
      hook of the last expected gradient waits for every bucket and writes the averages into ``.grad``:
      when ``loss.backward()`` returns, every rank holds the same averaged gradients.
    - Inside ``no_sync()`` nothing is communicated: gradients accumulate locally, and the next backward
      outside it averages the accumulated sums.
    """

    def __init__(self, module: nn.Module, comm, bucket_cap_bytes: int = 25 * 2**20):
        super().__init__()
        if not isinstance(module, nn.Module):
            raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
        if not isinstance(bucket_cap_bytes, int) or isinstance(bucket_cap_bytes, bool) or bucket_cap_bytes < 1:
            raise ValueError(f"bucket_cap_bytes must be an int >= 1, got {bucket_cap_bytes!r}")
        self.module = module
        self.comm = comm
        with torch.no_grad():  # one model on every rank: rank 0's, one broadcast per dtype
            states = [*module.parameters(), *module.buffers()]
            for dtype in dict.fromkeys(t.dtype for t in states):
                same = [t for t in states if t.dtype == dtype]
                flat = broadcast(comm, torch.cat([t.detach().reshape(-1) for t in same]), root=0)  # (elements,)
                start = 0
                for t in same:
                    t.copy_(flat[start:start + t.numel()].view_as(t))
                    start += t.numel()
        params = [p for p in module.parameters() if p.requires_grad]  # parameters() lists a tied weight once
        self.buckets: list[list[nn.Parameter]] = []
        size = 0
        for p in reversed(params):
            nbytes = p.numel() * p.element_size()
            last = self.buckets[-1] if self.buckets else None
            if last is None or size + nbytes > bucket_cap_bytes or last[0].dtype != p.dtype:
                self.buckets.append([])
                size = 0
            self.buckets[-1].append(p)
            size += nbytes
        self._bucket_of = {id(p): i for i, bucket in enumerate(self.buckets) for p in bucket}
        for p in params:
            p.register_post_accumulate_grad_hook(self._grad_ready)
        self._sync = True
        self._members: list[list[nn.Parameter]] = []  # per bucket: the parameters this backward will average
        self._pending: list[set[int]] | None = None  # per bucket: ids of the gradients still to come
        self._futures: list[concurrent.futures.Future | None] = []  # per launched bucket: its all-reduce
        self._thread = concurrent.futures.ThreadPoolExecutor(max_workers=1)  # one thread: buckets in order
        weakref.finalize(self, self._thread.shutdown, wait=False)

    def forward(self, *args, **kwargs):
        out = self.module(*args, **kwargs)
        if self._sync and torch.is_grad_enabled():
            used = _parameters_reached(out)
            self._members = [[p for p in bucket if id(p) in used] for bucket in self.buckets]
            self._pending = [{id(p) for p in members} for members in self._members]
            self._futures = []
        return out

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Backward passes of forwards run inside accumulate gradients locally, without communication."""
        before, self._sync = self._sync, False
        try:
            yield
        finally:
            self._sync = before

    def _grad_ready(self, p: torch.Tensor) -> None:
        """After ``p.grad`` was accumulated: launch every complete bucket, in order; after the last, finish."""
        if self._pending is None:  # a no_sync backward, or a graph our forward did not see
            return
        self._pending[self._bucket_of[id(p)]].discard(id(p))
        while len(self._futures) < len(self.buckets) and not self._pending[len(self._futures)]:
            self._launch(len(self._futures))
        if len(self._futures) == len(self.buckets):
            self._finish()

    def _launch(self, i: int) -> None:
        members = self._members[i]
        if not members:  # no parameter of this bucket was used: nothing to average
            self._futures.append(None)
            return
        flat = torch.cat([p.grad.reshape(-1) for p in members])  # (bucket elements,)
        self._futures.append(self._thread.submit(all_reduce, self.comm, flat, "mean"))

    def _finish(self) -> None:
        for members, future in zip(self._members, self._futures):
            if future is None:
                continue
            flat, start = future.result(), 0
            for p in members:
                p.grad.copy_(flat[start:start + p.numel()].view_as(p.grad))
                start += p.numel()
        self._pending = None


class ShardedOptimizer:
    """Optimizer-state sharding (ZeRO stage 1, Rajbhandari et al. 2020): the first step beyond DDP towards
    the lecture's "models too large for one GPU are trained with other frameworks (FSDP, etc.)".

    Under DDP every rank holds every parameter, the same averaged gradients, and its own copy of the
    optimizer state (AdamW: two moments, twice the parameters). Here each parameter has one *owner*;
    a rank keeps ``optimizer_class`` state for the parameters it owns only, about 1/N of the whole:

        step():  every rank steps the parameters it owns (the gradients are the same everywhere)
                 every rank broadcasts its updated shard, so all replicas hold the same parameters again

    Owners: largest parameter first, each to the rank owning the fewest elements so far (ties: the lower
    rank), the same on every rank. ``params`` like an optimizer's (a tied weight once); the gradients must
    already be averaged (DDP's backward).
    """

    def __init__(self, params, comm, optimizer_class=torch.optim.AdamW, **defaults):
        self.comm = comm
        self.params = list({id(p): p for p in params}.values())
        load = [0] * comm.world_size
        self.owner: dict[int, int] = {}
        for p in sorted(self.params, key=lambda p: -p.numel()):  # stable: equal sizes keep their order
            rank = min(range(comm.world_size), key=lambda r: load[r])
            self.owner[id(p)] = rank
            load[rank] += p.numel()
        self.shards = [[p for p in self.params if self.owner[id(p)] == r] for r in range(comm.world_size)]
        mine = self.shards[comm.rank]
        self.optimizer = optimizer_class(mine, **defaults) if mine else None

    def step(self) -> None:
        if self.optimizer is not None:
            self.optimizer.step()
        with torch.no_grad():
            for r, shard in enumerate(self.shards):
                for dtype in dict.fromkeys(p.dtype for p in shard):  # one broadcast per owner and dtype
                    same = [p for p in shard if p.dtype == dtype]
                    flat = torch.cat([p.detach().reshape(-1) for p in same])  # (shard elements,): r's are current
                    flat = broadcast(self.comm, flat, root=r)
                    start = 0
                    for p in same:
                        p.copy_(flat[start:start + p.numel()].view_as(p))
                        start += p.numel()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()


def _parameters_reached(out: Any) -> set[int]:
    """ids of the leaf tensors (parameters) the tensors in ``out`` depend on: a walk of the autograd graph
    from their ``grad_fn`` to the AccumulateGrad nodes, which hold their leaf as ``variable`` (an attribute
    torch's own DDP relies on for ``find_unused_parameters``; torch documents no public accessor for it)."""
    stack = [t.grad_fn for t in _tensors(out) if t.grad_fn is not None]
    reached = {id(t) for t in _tensors(out) if t.grad_fn is None and t.requires_grad}
    seen: set = set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        leaf = getattr(node, "variable", None)
        if leaf is not None:
            reached.add(id(leaf))
        stack.extend(fn for fn, _ in node.next_functions)
    return reached


def _tensors(out: Any) -> list[torch.Tensor]:
    """The tensors in a (nested) output: a tensor, or lists, tuples and dicts of them."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (list, tuple)):
        return [t for item in out for t in _tensors(item)]
    if isinstance(out, dict):
        return [t for item in out.values() for t in _tensors(item)]
    return []
