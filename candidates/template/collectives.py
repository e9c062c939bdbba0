"""collectives: ring AllReduce and the other collectives on point-to-point messages, and data-parallel
training (DDP). Spec: docs/spec/collectives.md.

Every function is *collective*: each of the N ranks (processes) calls it with its own tensor and the same
other arguments. ``comm`` is the communicator the suite hands you, for messages between the ranks::

    comm.rank, comm.world_size             this process is rank r of N (0 <= r < N)
    comm.device                            where this rank's tensors live (cpu under gloo)
    comm.send(tensor, dst)                 blocking send to rank dst
    comm.recv(tensor, src)                 blocking receive from rank src into ``tensor`` (same numel, dtype)
    comm.isend(tensor, dst) -> work        asynchronous forms; work.wait()
    comm.irecv(tensor, src) -> work
    comm.all_gather_object(obj) -> list    every rank's obj: small metadata (<= 512 bytes pickled, no
                                           tensors), to check arguments agree across ranks
    comm.group                             the torch.distributed process group, if you build on
                                           torch.distributed's own collectives (its bytes are not counted)

The suite counts every byte you send: all_reduce, reduce_scatter and all_gather must be bandwidth-optimal.
``op`` is "sum", "mean" (sum / N, floating tensors only), "max" or "min". Never modify the input. Bad
arguments (shapes, dtypes or ops that differ across ranks, an unknown op, a root outside the world) raise
ValueError or TypeError on *every* rank: a rank that raises alone leaves the others waiting forever.
"""

import torch
from torch import nn


def all_reduce(comm, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """op over every rank's tensor, elementwise; a new tensor shaped like ``tensor``, the same bits on every
    rank. Bandwidth-optimal: each rank sends at most 2(N-1)·ceil(S/N) elements (the ring: ReduceScatter, then
    AllGather), S = tensor.numel(). Any shape: 0-d, empty, S not divisible by N."""
    raise NotImplementedError("collectives.all_reduce")


def naive_all_reduce(comm, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """The same result as all_reduce, by "reduce everything on rank 0, then send it back" (for contrast:
    rank 0 sends (N-1)·S elements)."""
    raise NotImplementedError("collectives.naive_all_reduce")


def reduce_scatter(comm, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """Rank r returns chunk r (1-d) of the reduced, flattened tensor; chunks cut as ``torch.tensor_split(flat,
    N)`` does (the first S mod N chunks one element longer). Each rank sends at most (N-1)·ceil(S/N) elements."""
    raise NotImplementedError("collectives.reduce_scatter")


def all_gather(comm, tensor: torch.Tensor) -> torch.Tensor:
    """(N, *tensor.shape): row i is rank i's tensor (same shape and dtype on every rank). Each rank sends at
    most (N-1)·S elements."""
    raise NotImplementedError("collectives.all_gather")


def reduce(comm, tensor: torch.Tensor, root: int = 0, op: str = "sum") -> torch.Tensor | None:
    """The reduction over the ranks' tensors on ``root`` (a new tensor); None on every other rank."""
    raise NotImplementedError("collectives.reduce")


def broadcast(comm, tensor: torch.Tensor, root: int = 0) -> torch.Tensor:
    """A copy of root's tensor on every rank; the other ranks pass a tensor of the same shape and dtype
    (its values are ignored)."""
    raise NotImplementedError("collectives.broadcast")


class DistributedDataParallel(nn.Module):
    """Data-parallel training: ``module`` replicated on every rank, each on its own part of the batch.

    - Construction overwrites every parameter and buffer of ``module`` (frozen ones included) with rank 0's;
      ``module`` is wrapped (``self.module``), not copied.
    - ``forward(*args, **kwargs)`` runs the module. When ``loss.backward()`` returns, every trainable parameter
      that got a gradient holds the mean of the ranks' gradients (the same bits on every rank), averaged in
      buckets of at most ``bucket_cap_bytes`` with your all_reduce (each bucket once), launched during
      backward as their gradients become ready. A parameter used twice (tied weights) is averaged once;
      parameters no rank used keep ``grad = None`` and nothing waits for them; frozen ones get no gradient.
    - ``no_sync()``: a context manager; backward passes of forwards run inside it accumulate gradients
      locally and send nothing; the next backward outside it averages the accumulated sums.
    """

    def __init__(self, module: nn.Module, comm, bucket_cap_bytes: int = 25 * 2**20):
        super().__init__()
        raise NotImplementedError("collectives.DistributedDataParallel")

    def forward(self, *args, **kwargs):
        raise NotImplementedError("collectives.DistributedDataParallel.forward")

    def no_sync(self):
        raise NotImplementedError("collectives.DistributedDataParallel.no_sync")


class ShardedOptimizer:
    """Second tier, optimizer-state sharding (ZeRO stage 1): ``optimizer_class(own_params, **defaults)`` on
    each rank for the parameters it owns (each parameter owned by one rank, about 1/N of them by size).

    ``params`` as for an optimizer; the gradients are already averaged (DDP's backward). ``step()`` steps
    this rank's parameters, then every rank sends its updated parameters to the others, so all ranks hold
    the same parameters: those one ``optimizer_class`` over every parameter would hold. ``zero_grad(set_to_none=True)``.
    The ranks' optimizer states (the ``state`` of the torch.optim optimizers the object holds) add up to one
    unsharded optimizer's.
    """

    def __init__(self, params, comm, optimizer_class=torch.optim.AdamW, **defaults):
        raise NotImplementedError("collectives.ShardedOptimizer")

    def step(self) -> None:
        raise NotImplementedError("collectives.ShardedOptimizer.step")

    def zero_grad(self, set_to_none: bool = True) -> None:
        raise NotImplementedError("collectives.ShardedOptimizer.zero_grad")
