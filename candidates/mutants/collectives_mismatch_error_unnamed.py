"""collectives: arguments that differ across ranks raise ValueError("the ranks called it with different arguments") on every rank, without saying whether the shape, the dtype, op or root differs."""

import fmspec.reference.collectives as ref
from fmspec.candidates.mutants import edited

COMPONENT = "collectives"
CAUGHT_BY = ["test_bad_arguments_raise_on_every_rank"]

collectives = edited(ref, ('raise ValueError(f"{name}: {key} differs across ranks ({shown})")',
                           'raise ValueError(f"{name}: the ranks called it with different arguments")'))
