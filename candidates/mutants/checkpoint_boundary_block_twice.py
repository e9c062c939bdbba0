"""checkpoint: each segment runs one block too many (slices [start, end + 1]): boundary blocks run twice."""

import fmspec.reference.checkpoint as ref
from fmspec.candidates.mutants import patch

COMPONENT = "checkpoint"
CAUGHT_BY = [
    "test_outputs_match_no_checkpointing",
    "test_gradients_match_no_checkpointing",
    "test_no_graph_kept_without_grad",
    "test_segment_boundaries_as_given",
]
CAUGHT_BY_GPU = ["test_cuda_dropout_masks_replayed"]


def checkpoint_sequential(blocks, x, segments):
    blocks = list(blocks)
    bounds = ref._check_segments(segments, len(blocks))
    for start, end in zip(bounds, bounds[1:] + [len(blocks)]):
        seg = blocks[start:end + 1]  # bug: end is exclusive already

        def run(z, seg=seg):
            for block in seg:
                z = block(z)
            return z

        x = ref._Segment.apply(run, x, *[p for b in seg for p in b.parameters() if p.requires_grad])
    return x


checkpoint = patch(ref, checkpoint_sequential=checkpoint_sequential)
