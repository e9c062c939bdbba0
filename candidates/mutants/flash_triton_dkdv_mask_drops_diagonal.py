"""flash: the Triton dK/dV kernel's causal mask keeps keys strictly before the query (> instead of >=): the diagonal's gradient is lost."""

from fmspec.candidates.mutants._triton import flash_with_kernels

COMPONENT = "flash"
CAUGHT_BY = ["test_kernels_match_dense_under_triton_interpreter"]
CAUGHT_BY_GPU = ["test_low_precision_error_within_twice_baseline"]
CAPABILITIES = {"flash": {"devices": ["cpu", "cuda"], "dtypes": ["float32", "float64", "float16", "bfloat16"]}}

flash = flash_with_kernels("dkdv_mask_drops_diagonal",
                           ("pT = tl.where(offs_m[None, :] >= offs_n[:, None], pT, 0.0)",
                            "pT = tl.where(offs_m[None, :] > offs_n[:, None], pT, 0.0)"))
