"""Every variant of the NF4 dequantize kernel (reference/quant_triton.py: each level lookup, tile size and warp
count that benchmarks/quant_gpu.py --nf4-variants times) gives the readable reference's bits.

The suite checks the variant the reference uses (``NF4_LOOKUP``); these check the others, so that any of
them can become the reference after a GPU run. CPU only: the kernels run in Triton's interpreter, at small
sizes with partial last blocks, odd sizes and block sizes that are not powers of two or are odd.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("triton")

import fmspec.reference.quant as refq  # noqa: E402
from fmspec.reference import quant_triton as qt  # noqa: E402

LEVELS = torch.tensor(refq.NF4_LEVELS, dtype=torch.float32)
DTYPES = [torch.bfloat16, torch.float16, torch.float32]
# (n, block_size): a partial last block, an odd n, odd and non-power-of-two blocks, one block larger than n
CASES = [(1000, 64), (4098, 64), (23, 5), (301, 100), (7, 1), (300, 24), (255, 256)]
TILES = [(qt.NF4_TILE, qt.NF4_NUM_WARPS), (256, 4)]  # the default; small tiles: many programs, the last one partial


def nf4_state(n: int, block_size: int, dtype: torch.dtype) -> refq.NF4State:
    """The readable quantizer's state of n normal values, the first block partly zero."""
    x = torch.randn(n, generator=torch.Generator().manual_seed(n + block_size)).to(dtype)
    x[: min(n, 3)] = 0.0
    return refq.nf4_quantize(x, block_size=block_size)


def kernel_matches_readable(kernels, state: refq.NF4State, lookup: str, tile: int, num_warps: int) -> bool:
    """Whether ``kernels.nf4_dequantize`` (interpreted) equals the readable reference bit for bit on ``state``."""
    n = state.shape.numel()
    got = kernels.nf4_dequantize(state.packed, state.absmax, LEVELS, n, state.block_size, state.dtype,
                                 interpret=True, lookup=lookup, tile=tile, num_warps=num_warps)
    expected = refq.nf4_dequantize(state).reshape(-1)  # TRITON_INTERPRET unset: the readable code
    bits = torch.int32 if state.dtype == torch.float32 else torch.int16
    return got.dtype == expected.dtype and torch.equal(got.view(bits), expected.view(bits))


@pytest.fixture(autouse=True)
def _readable_on_cpu(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)


@pytest.mark.parametrize("tile, num_warps", TILES, ids=lambda v: str(v))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("n, block_size", CASES, ids=lambda v: str(v))
@pytest.mark.parametrize("lookup", qt.NF4_LOOKUPS)
def test_nf4_dequantize_variants_match_readable(lookup, n, block_size, dtype, tile, num_warps):
    state = nf4_state(n, block_size, dtype)
    assert kernel_matches_readable(qt, state, lookup, tile, num_warps), \
        f"nf4_dequantize(lookup={lookup!r}, tile={tile}, num_warps={num_warps}) differs from the readable " \
        f"reference: n={n}, block_size={block_size}, {dtype}"


def test_nf4_variant_check_catches_a_swapped_level():
    """The check above fails on a kernel whose select tree swaps two levels (the mutant's kernels)."""
    from fmspec.candidates.mutants import quant_triton_nf4_select_swapped as mutant

    state = nf4_state(1000, 64, torch.bfloat16)
    assert kernel_matches_readable(qt, state, "select", qt.NF4_TILE, qt.NF4_NUM_WARPS)
    assert not kernel_matches_readable(mutant.KERNELS, state, "select", qt.NF4_TILE, qt.NF4_NUM_WARPS)


def test_nf4_unknown_lookup_raises():
    state = nf4_state(64, 64, torch.float32)
    with pytest.raises(ValueError, match="lookup"):
        qt.nf4_dequantize(state.packed, state.absmax, LEVELS, 64, 64, torch.float32, interpret=True, lookup="rom")
