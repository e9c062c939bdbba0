"""quant: absmax and zero-point int8, NF4 (tier "nf4"), LLM.int8 matmul (tier "int8_matmul").
Spec: docs/spec/quant.md. Codes are int8 tensors; ``scale`` is always the step (absmax / 127), so
dequantization multiplies. Rounding: torch.round. Bad arguments raise ValueError / TypeError."""

import torch


def absmax_quantize(x: torch.Tensor, block_size: int | None = None, dim: int | None = None):
    """``(q, scale)``: q = round(127 / absmax · x) as int8, shaped like x; scale = absmax / 127 in x's dtype.

    Per tensor (0-d scale), over ``dim`` (scale shaped like x with size 1 at dim), or per flat row-major block
    of ``block_size`` (scale of shape (ceil(numel / block_size),), the last block may be short). An all-zero
    group has scale 0 and codes 0. Giving both block_size and dim is an error."""
    raise NotImplementedError("quant.absmax_quantize")


def absmax_dequantize(q: torch.Tensor, scale: torch.Tensor, block_size: int | None = None,
                      dim: int | None = None) -> torch.Tensor:
    """q · scale in scale's dtype, for the layout absmax_quantize produced."""
    raise NotImplementedError("quant.absmax_dequantize")


def zeropoint_quantize(x: torch.Tensor, block_size: int | None = None):
    """``(q, scale, zero_point)``: [min(x, 0), max(x, 0)] onto the codes [-128, 127]; scale = (max - min) / 255,
    zero_point = -128 - round(min / scale) (integer tensor), q = clamp(round(x / scale) + zero_point, -128, 127)."""
    raise NotImplementedError("quant.zeropoint_quantize")


def zeropoint_dequantize(q: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor,
                         block_size: int | None = None) -> torch.Tensor:
    """(q - zero_point) · scale in scale's dtype (beware int8 overflow in the subtraction)."""
    raise NotImplementedError("quant.zeropoint_dequantize")


def nf4_quantize(x: torch.Tensor, block_size: int = 64, double_quant: bool = False) -> object:
    """Blockwise NF4: the index of the nearest of the 16 QLoRA levels to x / absmax(block). With
    double_quant, the block constants minus their mean are absmax-int8 quantized in blocks of 256.
    Returns any object nf4_dequantize understands."""
    raise NotImplementedError("quant.nf4_quantize")


def nf4_dequantize(state: object) -> torch.Tensor:
    """levels[code] · absmax(block), shaped and typed like the quantized tensor."""
    raise NotImplementedError("quant.nf4_dequantize")


def int8_matmul(x: torch.Tensor, w: torch.Tensor, threshold: float = 6.0) -> torch.Tensor:
    """LLM.int8: x (..., in) @ w (out, in).T. Columns of x with any |x| >= threshold in full precision,
    the rest absmax-int8 per row of x and per row of w, multiplied in int32 and rescaled."""
    raise NotImplementedError("quant.int8_matmul")
