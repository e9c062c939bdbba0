"""flash: the Triton path's autograd function also saves the score matrix Q·Kᵀ for the backward (T×T memory)."""

from fmspec.candidates.mutants._triton import flash_with_kernels

COMPONENT = "flash"
CAUGHT_BY = []  # on CPU this path runs only under the interpreter, at sizes where T×T memory does not show
CAUGHT_BY_GPU = ["test_gpu_memory_grows_linearly_in_t"]
CAPABILITIES = {"flash": {"devices": ["cpu", "cuda"], "dtypes": ["float32", "float64", "float16", "bfloat16"]}}

flash = flash_with_kernels("saves_scores",
                           ("ctx.save_for_backward(q, k, v, o, lse2)",
                            "ctx.save_for_backward(q, k, v, o, lse2, q @ k.transpose(-1, -2))"),
                           ("q, k, v, o, lse2 = ctx.saved_tensors",
                            "q, k, v, o, lse2, _scores = ctx.saved_tensors"))
