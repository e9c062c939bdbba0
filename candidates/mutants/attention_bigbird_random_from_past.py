"""attention: BigBird random blocks drawn only from the past (blocks before the row), not the whole sequence."""

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import edit_source, patch
from fmspec.reference.attention import masks

COMPONENT = "attention"
CAUGHT_BY = ["test_bigbird_figure_worked_example", "test_bigbird_mask_is_blocked_window_global_random",
             "test_bigbird_random_blocks_come_from_whole_sequence"]

_masks = edit_source(masks, [("rest = [j for j in range(n_blocks) if j not in fixed]  # the whole sequence, past and future",
                              "rest = [j for j in range(i) if j not in fixed]  # the past only")])
attention = patch(ref, bigbird_mask=_masks.bigbird_mask)
