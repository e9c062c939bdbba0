"""collectives: reduce_scatter all-reduces the whole tensor and keeps one chunk: right values, twice the bytes."""

import torch

import fmspec.reference.collectives as ref
from fmspec.candidates.mutants import patch

COMPONENT = "collectives"
CAUGHT_BY = ["test_reduce_scatter_bandwidth"]


def reduce_scatter(comm, tensor, op="sum"):
    return torch.tensor_split(ref.all_reduce(comm, tensor, op).reshape(-1), comm.world_size)[comm.rank].clone()


collectives = patch(ref, reduce_scatter=reduce_scatter)
