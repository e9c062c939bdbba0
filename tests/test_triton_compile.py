"""The Triton kernels compile for a Hopper GPU, on a machine without one.

Triton's interpreter (how the suites run the kernels on CPU) executes the Python of a kernel, so a
kernel it runs may still not compile: a global that is not a ``tl.constexpr``, a type that differs
between the branches of a runtime ``if``. ``triton.compile`` with an explicit target runs the real
compiler (to PTX and cubin) with no GPU present.
"""

from __future__ import annotations

import pytest

triton = pytest.importorskip("triton")
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from fmspec.reference import flash_triton as ft  # noqa: E402
from fmspec.reference import quant_triton as qt  # noqa: E402

HOPPER = GPUTarget("cuda", 90, 32)
QUANT = [
    ("absmax_quantize", qt._absmax_quantize_kernel, {"X": "*bf16", "Q": "*i8", "S": "*bf16", "n": "i64", "n_blocks": "i64"}),
    ("absmax_quantize_fp32", qt._absmax_quantize_kernel, {"X": "*fp32", "Q": "*i8", "S": "*fp32", "n": "i64", "n_blocks": "i64"}),
    ("absmax_dequantize", qt._absmax_dequantize_kernel, {"Q": "*i8", "S": "*fp16", "OUT": "*fp16", "n": "i64", "n_blocks": "i64"}),
    ("nf4_dequantize", qt._nf4_dequantize_kernel,
     {"PACKED": "*u8", "ABSMAX": "*fp32", "LEVELS": "*fp32", "OUT": "*bf16", "n": "i64", "n_blocks": "i64"}),
]


def compile_for_hopper(fn, signature: dict, constexprs: dict, **options):
    src = ASTSource(fn=fn, signature={**signature, **{k: "constexpr" for k in constexprs}}, constexprs=constexprs)
    return triton.compile(src, target=HOPPER, options=options)


@pytest.mark.parametrize("name, fn, signature", QUANT, ids=[q[0] for q in QUANT])
@pytest.mark.parametrize("block", [64, 100], ids=["block64", "block100"])
def test_quant_kernels_compile_for_hopper(name, fn, signature, block):
    b_p2 = triton.next_power_of_2(block)
    kernel = compile_for_hopper(fn, signature, {"B": block, "B_P2": b_p2, "ROWS": qt.TILE // b_p2},
                                num_warps=qt.NUM_WARPS, enable_fp_fusion=False)
    assert "ptx" in kernel.asm


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_flash_kernels_compile_for_hopper(causal):
    common = {"qk_scale": "fp32", "Tq": "i32", "Tk": "i32", "L_stride": "i32", "T_BUCKET": "i32"}
    consts = {"D": 64, "BLOCK_M": 64, "BLOCK_N": 64, "CAUSAL": causal, "USE_TMA": False}
    fwd = {"Q": "*bf16", "K": "*bf16", "V": "*bf16", "O": "*bf16", "L": "*fp32", **common}
    assert "ptx" in compile_for_hopper(ft._attn_fwd, fwd, consts, num_warps=4, num_stages=2).asm
    bwd = {"Q": "*bf16", "K": "*bf16", "V": "*bf16", "DO": "*bf16", "L": "*fp32", "DELTA": "*fp32"}
    scales = {"qk_scale": "fp32", "sm_scale": "fp32", "Tq": "i32", "Tk": "i32", "L_stride": "i32", "T_BUCKET": "i32"}
    dkdv = {**bwd, "DK": "*bf16", "DV": "*bf16", **scales}
    assert "ptx" in compile_for_hopper(ft._attn_bwd_dkdv, dkdv, consts, num_warps=4, num_stages=2).asm
    dq = {**bwd, "DQ": "*bf16", **scales}
    assert "ptx" in compile_for_hopper(ft._attn_bwd_dq, dq, consts, num_warps=4, num_stages=2).asm
