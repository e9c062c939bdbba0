"""checkpoint: a boundary equal to len(blocks) is accepted (> n instead of >= n): an empty last segment instead of a ValueError."""

import fmspec.reference.checkpoint as ref
from fmspec.candidates.mutants import edited

COMPONENT = "checkpoint"
CAUGHT_BY = ["test_bad_segments_raise_value_error"]

checkpoint = edited(ref, ('or bounds[-1] >= n:',
                          'or bounds[-1] > n:'))
