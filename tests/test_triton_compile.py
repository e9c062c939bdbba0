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
NF4_SIGNATURE = {"PACKED": "*u8", "ABSMAX": "*bf16", "LEVELS": "*fp32", "OUT": "*bf16", "n": "i64", "n_blocks": "i64"}


def compile_for_hopper(fn, signature: dict, constexprs: dict, aligned: tuple[str, ...] = (), **options):
    """``fn`` compiled for sm_90; ``aligned``: arguments specialised as multiples of 16 (pointers: 16-byte
    aligned), as a launch with such arguments compiles them (the loads and stores then vectorise)."""
    attrs = {(fn.arg_names.index(a),): [["tt.divisibility", 16]] for a in aligned}
    src = ASTSource(fn=fn, signature={**signature, **{k: "constexpr" for k in constexprs}}, constexprs=constexprs,
                    attrs=attrs)
    return triton.compile(src, target=HOPPER, options=options)


@pytest.mark.parametrize("name, fn, signature", QUANT, ids=[q[0] for q in QUANT])
@pytest.mark.parametrize("block", [64, 100], ids=["block64", "block100"])
def test_quant_kernels_compile_for_hopper(name, fn, signature, block):
    b_p2 = triton.next_power_of_2(block)
    consts = {"B": block, "B_P2": b_p2, "ROWS": qt.TILE // b_p2}
    if fn is qt._nf4_dequantize_kernel:
        consts["LOOKUP"] = qt.NF4_LOOKUP  # the launch of nf4_dequantize
    kernel = compile_for_hopper(fn, signature, consts, num_warps=qt.NUM_WARPS, enable_fp_fusion=False)
    assert "ptx" in kernel.asm


@pytest.mark.parametrize("block", [64, 100], ids=["block64", "block100"])
@pytest.mark.parametrize("tile, num_warps", [(8192, 8), (32768, 16)], ids=["tile8192-w8", "tile32768-w16"])
@pytest.mark.parametrize("lookup", qt.NF4_LOOKUPS)
def test_nf4_dequantize_variants_compile_for_hopper(lookup, tile, num_warps, block):
    """Each variant benchmarks/quant_gpu.py --nf4-variants times, as a launch with aligned pointers and sizes
    compiles it; with blocks of 64 (whole bytes, whole rows) the output goes out in 16-byte stores."""
    b_p2 = triton.next_power_of_2(block)
    kernel = compile_for_hopper(qt._nf4_dequantize_kernel, NF4_SIGNATURE,
                                {"B": block, "B_P2": b_p2, "ROWS": tile // b_p2, "LOOKUP": lookup},
                                aligned=tuple(NF4_SIGNATURE), num_warps=num_warps, enable_fp_fusion=False)
    assert "ptx" in kernel.asm
    if block == 64:
        assert "st.global.v4.b32" in kernel.asm["ptx"]


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


# ---------------------------------------------------------------- the flash profile's variants (benchmarks/)
def _flash_profile_module():
    """benchmarks/flash_profile_gpu.py, imported from its path (sys.path restored after)."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "flash_profile_gpu.py"
    saved = list(sys.path)
    try:
        spec = importlib.util.spec_from_file_location("flash_profile_gpu", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


FWD_SIG = {"Q": "*bf16", "K": "*bf16", "V": "*bf16", "O": "*bf16", "L": "*fp32", "qk_scale": "fp32", "Tq": "i32",
           "Tk": "i32", "L_stride": "i32", "T_BUCKET": "i32"}


@pytest.mark.parametrize("D", [64, 128])
def test_flash_ablation_probe_compiles_for_hopper(D):
    """Every switch setting of the ablation copy compiles with TMA at the forward's usual tile."""
    fp = _flash_profile_module()
    for name, softmax, qk, pv in fp.ABLATION:
        consts = {"D": D, "BLOCK_M": 128, "BLOCK_N": 64, "CAUSAL": False, "USE_TMA": True, "SOFTMAX": softmax,
                  "QK": qk, "PV": pv}
        assert "ptx" in compile_for_hopper(fp._fwd_probe, FWD_SIG, consts, num_warps=8, num_stages=2).asm, name


@pytest.mark.parametrize("D", [64, 128])
def test_two_per_sm_configs_fit_two_programs_without_spills(D):
    """The premise of flash_triton.TWO_PER_SM: each of its configs kept for this D compiles for sm_90 within
    128 registers, spills nothing and leaves room for two programs on an SM (H100 limits)."""
    fp = _flash_profile_module()
    kept = [c for c in ft._prune(ft._configs("fwd", two_per_sm=True), {"D": D}) if c.maxnreg]
    assert kept, f"no two-per-SM config kept at D={D}"
    limits = {"smem_per_sm": 233472, "regs_per_sm": 65536, "threads_per_sm": 2048}
    for c in kept:
        if not c.kwargs["USE_TMA"]:
            continue
        r = fp.resources_compiled("fwd", fp.cfg_dict(c), D, False)
        assert r["regs"] <= 128 and r["spills"] == 0, (fp.cfg_name(fp.cfg_dict(c)), r)
        assert fp.ctas_per_sm(r["regs"], r["shared"], c.num_warps, limits) >= 2, (fp.cfg_name(fp.cfg_dict(c)), r)


@pytest.mark.parametrize("D", [64, 128])
def test_flash_profile_candidates_compile_for_hopper(D):
    """Every candidate config the profile times compiles for sm_90 (TMA and plain loads), causal or not."""
    fp = _flash_profile_module()
    for tma in (True, False):
        for c in fp.candidates(D, tma):
            for causal in (False, True):
                r = fp.resources_compiled("fwd", c, D, causal)
                assert r["regs"] and r["shared"] > 0, (fp.cfg_name(c), r)
