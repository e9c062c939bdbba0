"""checkpoint: segments cover blocks[:-1]; the last block runs plainly and keeps its graph."""

import fmspec.reference.checkpoint as ref
from fmspec.candidates.mutants import patch

COMPONENT = "checkpoint"
CAUGHT_BY = [
    "test_forward_keeps_only_segment_inputs",
    "test_each_segment_rematerialized_once_last_first",
    "test_lecture_network_memory",
    "test_segment_boundaries_as_given",
]


def checkpoint_sequential(blocks, x, segments):
    blocks = list(blocks)
    bounds = ref._check_segments(segments, len(blocks))
    if len(blocks) == 1:
        return blocks[0](x)
    bounds = [b for b in bounds if b < len(blocks) - 1]  # bug: off by one at the end
    x = ref.checkpoint_sequential(blocks[:-1], x, bounds)
    return blocks[-1](x)


checkpoint = patch(ref, checkpoint_sequential=checkpoint_sequential)
