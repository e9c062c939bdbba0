"""accounting: gpus_to_hold's default H100 of "80 GB" taken as 80 GiB (80 * 2**30 bytes), not 80e9."""

import fmspec.reference.accounting as ref
from fmspec.candidates.mutants import patch

COMPONENT = "accounting"
CAUGHT_BY = ["test_bfloat16_weights_and_h100s_to_hold_them"]


def gpus_to_hold(n_params, bytes_per_param=2, gpu_bytes=80 * 2**30):  # bug: GiB, the slide's GB are 1e9 bytes
    return ref.gpus_to_hold(n_params, bytes_per_param, gpu_bytes)


accounting = patch(ref, gpus_to_hold=gpus_to_hold)
