"""checkpoint: a boundary equal to len(blocks) is accepted (> n instead of >= n): an empty last segment instead of a ValueError."""

import fmspec.reference.checkpoint as ref
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "checkpoint"
CAUGHT_BY = ["test_bad_segments_raise_value_error"]
EDITS = [  # the reference with these lines changed (the first occurrence of each)
    ('or bounds[-1] >= n:',
     'or bounds[-1] > n:'),
]


checkpoint = patch(edit_source(ref, EDITS))
