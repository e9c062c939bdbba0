"""flash: the Triton dK/dV kernel's causal mask keeps keys strictly before the query (> instead of >=): the diagonal's gradient is lost."""

import inspect
import linecache
import sys

import triton

import reference.flash as ref
import reference.flash_triton as ref_triton
from candidates.mutants import edit_source, patch

COMPONENT = "flash"
CAUGHT_BY = ["test_kernels_match_dense_under_triton_interpreter"]
CAPABILITIES = {"flash": {"devices": ["cpu", "cuda"], "dtypes": ["float32", "float64", "float16", "bfloat16"]}}
EDITS = [  # reference/flash_triton.py with these lines changed (the first occurrence of each)
    ('pT = tl.where(offs_m[None, :] >= offs_n[:, None], pT, 0.0)',
     'pT = tl.where(offs_m[None, :] > offs_n[:, None], pT, 0.0)'),
]


def edited_kernels(edits):
    """reference.flash_triton with ``edits`` applied: compiled kernels for CUDA, and a second copy built for
    Triton's interpreter (CPU) that the first hands CPU launches to, as the reference module does.

    Triton reads each kernel's source through linecache, so the edited text is registered under a name of
    its own (compiling it under the reference's file name would run the unedited kernels); each copy is
    registered in sys.modules, where the module looks itself up.
    """
    source = inspect.getsource(ref_triton)
    for old, new in edits:
        if old not in source:
            raise ValueError(f"{ref_triton.__name__} no longer contains {old!r}: update the mutant")
        source = source.replace(old, new, 1)
    filename = f"<{__name__}: reference/flash_triton.py edited>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)

    def build(name, interpret):
        module = sys.modules[name] = type(ref_triton)(name)
        with triton.knobs.runtime.scope():
            triton.knobs.runtime.interpret = interpret
            exec(compile(source, filename, "exec"), module.__dict__)
        return module

    compiled = build(ref_triton.__name__ + "_mutant", interpret=False)
    compiled._INTERPRETED = build(ref_triton.__name__ + "_mutant_interpreted", interpret=True)
    return compiled


flash = patch(edit_source(ref, [
    ('from reference import flash_triton\n\n        o, lse = flash_triton.attention(',
     'o, lse = KERNELS.attention('),
], KERNELS=edited_kernels(EDITS)))
