"""collectives: all_gather collects the rows on rank 0, which sends the stacked result to every rank: right values, rank 0 sends N(N-1)·S."""

import torch

import fmspec.reference.collectives as ref
from fmspec.candidates.mutants import patch

COMPONENT = "collectives"
CAUGHT_BY = ["test_all_gather_bandwidth"]


def all_gather(comm, tensor):
    n = comm.world_size
    out = tensor.new_empty((n, *tensor.shape))
    out[comm.rank] = tensor
    if comm.rank == 0:
        for src in range(1, n):
            comm.recv(out[src], src)
        for dst in range(1, n):
            comm.send(out, dst)
    else:
        comm.send(tensor, 0)
        comm.recv(out, 0)
    return out


collectives = patch(ref, all_gather=all_gather)
