"""gpt: the embedding returns the token rows only; the position rows are never added."""

import fmspec.reference.gpt as ref
from fmspec.candidates.mutants import edited, patch

COMPONENT = "gpt"
CAUGHT_BY = ["test_embed_worked_example", "test_embed_adds_token_and_position_rows",
             "test_every_parameter_gets_a_gradient"]

copy = edited(ref, ("return token_table[ids] + position_table[:T]  # (B, T, d) + (T, d)",
                    "return token_table[ids]  # (B, T, d): positions forgotten"))
gpt = patch(ref, embed=copy.embed)  # the edited embed only; every other piece is the reference's own
