"""collectives from torch.distributed's own collectives (``all_reduce``, ``reduce``, ``broadcast``,
``all_gather``, ``reduce_scatter``) on the communicator's process group, and DDP from
``torch.nn.parallel.DistributedDataParallel``.

Where torch differs from the contract, this module bridges it (and says so):
- torch's collectives work in place on the caller's tensor; the contract's return new tensors and leave
  the input as it was: each function here works on a copy;
- torch checks nothing across ranks (only under ``TORCH_DISTRIBUTED_DEBUG=DETAIL``): shapes, dtypes or ops
  that differ between ranks hang, or fail on some ranks only. Every function here first exchanges its
  arguments (``comm.all_gather_object``) and raises on every rank;
- gloo has no ``ReduceOp.AVG`` (nccl only): "mean" is a sum divided by N, as in the reference;
- ``reduce_scatter_tensor`` needs S divisible by N; the list form ``reduce_scatter`` takes the contract's
  uneven chunks (``torch.tensor_split``'s rule) and returns chunk ``rank``, 1-d;
- ``all_gather`` fills a list: stacked here into (N, *shape); ``reduce`` leaves partial sums in the
  non-root ranks' buffers: the contract returns None there;
- torch's messages bypass ``comm.send``: the suite cannot count them, so ``CAPABILITIES["collectives"]``
  has ``"p2p": False`` and the bandwidth, ring-trace and bucket-byte tests are unsupported here;
- ``DistributedDataParallel`` is torch's own, on ``comm.group``, with ``find_unused_parameters=True`` (the
  contract lets a parameter no rank used keep ``grad = None``; without it torch raises at the next step),
  ``bucket_cap_mb = bucket_cap_bytes / 2**20``, and ``broadcast_buffers=False``: the contract broadcasts
  buffers once, at construction, where torch's default re-broadcasts them at every forward; with
  ``broadcast_buffers=False`` torch's construction broadcasts the parameters only, so the buffers are
  broadcast here, once, from rank 0;
- ``ShardedOptimizer`` is ``torch.distributed.optim.ZeroRedundancyOptimizer`` on ``comm.group`` (its own
  partition: parameters by size to the least loaded rank, as the reference does).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

OPS = ("sum", "mean", "max", "min")
_RED = {"sum": dist.ReduceOp.SUM, "mean": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}


def _check(comm, name: str, tensor, op=None, root=None) -> None:
    mine = {"shape": tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else None,
            "dtype": str(getattr(tensor, "dtype", type(tensor).__name__)),
            "op": op if isinstance(op, str) or op is None else repr(op),
            "root": root if isinstance(root, int) or root is None else repr(root)}
    everyone = comm.all_gather_object(mine)
    for key in mine:
        if any(m[key] != everyone[0][key] for m in everyone):
            raise ValueError(f"{name}: {key} differs across ranks: {[m[key] for m in everyone]}")
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name}: tensor must be a torch.Tensor, got {type(tensor).__name__}")
    if op is not None and op not in OPS:
        raise ValueError(f"{name}: op must be one of {OPS}, got {op!r}")
    if op == "mean" and not tensor.is_floating_point():
        raise TypeError(f"{name}: op='mean' needs a floating tensor, got {tensor.dtype}")
    if root is not None and (not isinstance(root, int) or isinstance(root, bool) or not 0 <= root < comm.world_size):
        raise ValueError(f"{name}: root must be a rank in [0, {comm.world_size}), got {root!r}")


def all_reduce(comm, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    _check(comm, "all_reduce", tensor, op)
    out = tensor.detach().clone()
    dist.all_reduce(out, op=_RED[op], group=comm.group)
    return out / comm.world_size if op == "mean" else out


def naive_all_reduce(comm, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """torch's reduce to rank 0, then its broadcast from rank 0."""
    _check(comm, "naive_all_reduce", tensor, op)
    out = tensor.detach().clone()
    dist.reduce(out, group_dst=0, op=_RED[op], group=comm.group)
    if op == "mean" and comm.rank == 0:
        out /= comm.world_size
    dist.broadcast(out, group_src=0, group=comm.group)
    return out


def reduce_scatter(comm, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    _check(comm, "reduce_scatter", tensor, op)
    chunks = [c.contiguous() for c in torch.tensor_split(tensor.detach().reshape(-1), comm.world_size)]
    out = torch.empty_like(chunks[comm.rank])
    dist.reduce_scatter(out, chunks, op=_RED[op], group=comm.group)
    return out / comm.world_size if op == "mean" else out


def all_gather(comm, tensor: torch.Tensor) -> torch.Tensor:
    _check(comm, "all_gather", tensor)
    rows = [torch.empty_like(tensor) for _ in range(comm.world_size)]
    dist.all_gather(rows, tensor.detach().contiguous(), group=comm.group)
    return torch.stack(rows)


def reduce(comm, tensor: torch.Tensor, root: int = 0, op: str = "sum") -> torch.Tensor | None:
    _check(comm, "reduce", tensor, op, root)
    out = tensor.detach().clone()
    dist.reduce(out, group_dst=root, op=_RED[op], group=comm.group)
    if comm.rank != root:
        return None
    return out / comm.world_size if op == "mean" else out


def broadcast(comm, tensor: torch.Tensor, root: int = 0) -> torch.Tensor:
    _check(comm, "broadcast", tensor, root=root)
    out = tensor.detach().clone()
    dist.broadcast(out, group_src=root, group=comm.group)
    return out


def DistributedDataParallel(module: nn.Module, comm, bucket_cap_bytes: int = 25 * 2**20) -> nn.Module:
    """torch's DDP on ``comm.group`` (see the module docstring for the settings)."""
    if not isinstance(bucket_cap_bytes, int) or isinstance(bucket_cap_bytes, bool) or bucket_cap_bytes < 1:
        raise ValueError(f"bucket_cap_bytes must be an int >= 1, got {bucket_cap_bytes!r}")
    ddp = nn.parallel.DistributedDataParallel(module, process_group=comm.group, bucket_cap_mb=bucket_cap_bytes / 2**20,
                                              find_unused_parameters=True, broadcast_buffers=False)
    with torch.no_grad():
        for buf in module.buffers():
            dist.broadcast(buf, group_src=0, group=comm.group)
    return ddp


def ShardedOptimizer(params, comm, optimizer_class=torch.optim.AdamW, **defaults):
    """torch's ZeroRedundancyOptimizer on ``comm.group``."""
    from torch.distributed.optim import ZeroRedundancyOptimizer

    return ZeroRedundancyOptimizer(params, optimizer_class=optimizer_class, process_group=comm.group, **defaults)
