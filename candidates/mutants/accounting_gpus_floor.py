"""accounting: gpus_to_hold rounds down (int()), leaving part of the weights without a GPU."""

import fmspec.reference.accounting as ref
from fmspec.candidates.mutants import patch

COMPONENT = "accounting"
CAUGHT_BY = ["test_gpus_to_hold_is_fewest_that_fit"]


def gpus_to_hold(n_params, bytes_per_param=2, gpu_bytes=80e9):
    ref.gpus_to_hold(n_params, bytes_per_param, gpu_bytes)  # argument checks
    return int(ref.model_bytes(n_params, bytes_per_param) / gpu_bytes)  # bug: floor, not ceil


accounting = patch(ref, gpus_to_hold=gpus_to_hold)
