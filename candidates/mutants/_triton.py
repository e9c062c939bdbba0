"""Mutants of the Triton kernels: reference/flash_triton.py rebuilt from edited source.

``edit_source`` (one exec of the edited text) is not enough for Triton: ``@triton.jit`` reads each
kernel's source again through linecache, and the module looks itself up in ``sys.modules``.
"""

from __future__ import annotations

import linecache
import sys
import types

import triton

import fmspec.reference.flash as ref
import fmspec.reference.flash_triton as ref_triton
from fmspec.candidates.mutants import edited, edited_text


def edited_kernels(edits: list[tuple[str, str]], tag: str) -> types.ModuleType:
    """fmspec.reference.flash_triton with ``edits`` applied: compiled kernels for CUDA, and a second copy built for
    Triton's interpreter (CPU) that the first hands CPU launches to, as the reference module does.

    The edited text is registered in linecache under a name of its own (compiling it under the reference's
    file name would run the unedited kernels); each copy is registered in sys.modules under ``tag``.
    """
    source = edited_text(ref_triton, edits)
    filename = f"<{tag}: reference/flash_triton.py edited>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)

    def build(name: str, interpret: bool) -> types.ModuleType:
        module = sys.modules[name] = types.ModuleType(name)
        with triton.knobs.runtime.scope():
            triton.knobs.runtime.interpret = interpret
            exec(compile(source, filename, "exec"), module.__dict__)
        return module

    compiled = build(f"{ref_triton.__name__}_{tag}", interpret=False)
    compiled._INTERPRETED = build(f"{ref_triton.__name__}_{tag}_interpreted", interpret=True)
    return compiled


def flash_with_kernels(tag: str, *edits: tuple[str, str]) -> types.SimpleNamespace:
    """The reference flash namespace, its Triton launches routed to the kernels with ``edits``, each ``(old, new)``."""
    return edited(ref, ('from fmspec.reference import flash_triton\n\n        o, lse = flash_triton.attention(',
                        'o, lse = KERNELS.attention('),
                  KERNELS=edited_kernels(list(edits), tag))
