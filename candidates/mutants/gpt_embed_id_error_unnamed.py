"""gpt: an id outside the vocabulary raises ValueError("token id outside the vocabulary [0, 5)"), which does not name ids."""

import fmspec.reference.gpt as ref
from fmspec.candidates.mutants import edited, patch

COMPONENT = "gpt"
CAUGHT_BY = ["test_embed_bad_arguments_raise_value_error"]

copy = edited(ref, ('raise ValueError(f"ids must lie in [0, {V}) (the vocabulary), got [{int(ids.min())}, {int(ids.max())}]")',
                    'raise ValueError(f"token id outside the vocabulary [0, {V}): got [{int(ids.min())}, {int(ids.max())}]")'))
gpt = patch(ref, embed=copy.embed)  # the edited embed only; every other piece is the reference's own
