"""Finetuning a frozen pretrained model: bottleneck adapters and QLoRA (lecture 004, "Finetuning your own
Model – Adapters" and "– QLoRa"; Houlsby et al., "Parameter-efficient transfer learning for NLP", 2019;
Dettmers et al., "QLoRA: efficient finetuning of quantized LLMs", 2023).

**Adapters.** "Add adapter-layers between (some) pretrained layers, freeze the original model's weights."
A bottleneck adapter of width d and bottleneck m projects down, applies a nonlinearity f, projects back
up and adds its input::

    h = x + W_up f(W_down x + b_down) + b_up,      W_down (m, d), b_down (m,), W_up (d, m), b_up (d,)

It trains 2·d·m + d + m parameters. W_up and b_up start at zero, so at initialisation h = x and the
adapted model computes exactly what the pretrained one did; W_down starts random (nn.Linear's own
Kaiming-uniform), else no gradient would ever reach W_up through f(b_down). :func:`insert_adapters` puts
one adapter after each named ``nn.Linear`` (y = adapter(layer(x))) and freezes everything else.

**QLoRA.** LoRA (``reference/lora.py``) on a base whose weight is stored quantized and dequantized on the
fly in every forward pass; only A and B train, in the compute dtype (the base weight's dtype)::

    h = x dequant(W_q)^T + b + (alpha / r) · x A^T B^T,      A (r, in),  B (out, r),  B = 0 at init

"We cannot train the quantized model, but we can merge in the trained adapters afterwards": ``merge()``
returns a plain ``nn.Linear`` with weight dequant(W_q) + (alpha / r) B A. The quantizers are the quant
component's (``reference/quant.py``), applied to the weight cast to float32 (QLoRA quantizes bf16
weights from fp32), in flat row-major blocks of ``block_size`` weights:

- ``"nf4"``: 4-bit NormalFloat codes, two per byte, with double quantization: the float32 block
  constants minus their mean, absmax-int8 in blocks of 256, plus the mean. Stored bits per weight at
  block size B: 4 + 8/B + 32/(256·B) (+ 32 bits for the mean of the whole tensor); 4.127 at B = 64.
- ``"int8-block"``: the lecture's blockwise absmax int8, one float32 step per block: 8 + 32/B bits.

The block size must divide the number of weights: QLoRALinear has no padding rule, so every stored
constant covers ``block_size`` real weights and the stored size is exactly the formula.

Worked example (int8-block, block_size 4, so here a block is a row; r = 1, alpha = 1)::

    W = [[1.0, -2.5, 0.3, 4.0],        row 1: absmax 4, c = 127/4 = 31.75, c·W = [31.75, -79.375, 9.525, 127]
         [0.2, -0.6, 1.0, 0.05]]       row 2: absmax 1, c = 127,           c·W = [25.4, -76.2, 127, 6.35]
    W_q = [[32, -79, 10, 127], [25, -76, 127, 6]],  steps = [4/127, 1/127]
    dequant(W_q) = [[1.00787, -2.48819, 0.31496, 4.0], [0.19685, -0.59843, 1.0, 0.04724]]
    A = [[1, 0, 0, 1]],  B = [[1], [-1]],  x = [1, 1, 1, 1]
    h = dequant(W_q) x + B (A x) = [360/127, 82/127] + [2, -2] = [4.83465, -1.35433]
    merge(): W' = dequant(W_q) + B A = [[2.00787, -2.48819, 0.31496, 5.0], [-0.80315, -0.59843, 1.0, -0.95276]]

(the unquantized W x + B A x is [4.8, -1.35]: the difference is the quantization error, kept by the merge).

NF4 on W = [[1, -0.5, 0.25, 0], [3, -3, 1.5, 0.3]] in blocks of 4: absmax [1, 3]; W / absmax rounds to
the nearest levels, codes [15, 2, 10, 7 | 15, 0, 12, 8] (levels 1, -0.5251, 0.2461, 0 | 1, -1, 0.4407,
0.0796), packed high nibble first into bytes [242, 167, 240, 200]; the constants minus their mean 2 are
[-1, 1] -> int8 [-127, 127] with step 1/127, which give back [1, 3] exactly. dequant(W_q) =
[[1, -0.52507, 0.24611, 0], [3, -3, 1.32213, 0.23874]].

Adapter worked example (d = 2, m = 1, f = relu)::

    W_down = [[1, -1]], b_down = [0.5], W_up = [[2], [-1]], b_up = [0, 1]
    x = [3, 1]:  W_down x + b_down = 2.5 -> relu 2.5 -> W_up 2.5 + b_up = [5, -1.5] -> h = [8, -0.5]
    x = [1, 3]:  -1.5 -> relu 0 -> b_up = [0, 1] -> h = [1, 4]

and for BERT-base (d = 768) with m = 64: 2·768·64 + 768 + 64 = 99,136 parameters per adapter.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

import fmspec.reference.quant as refq
from fmspec.reference.lora import LoRALinear, select_linears

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"relu": torch.relu, "gelu": F.gelu,
                                                                  "tanh": torch.tanh}
QUANTS = ("nf4", "int8-block")


def _check_size(value: object, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")


# ----------------------------------------------------------------------------------------------- adapters
class Adapter(nn.Module):
    """h = x + up(f(down(x))): a bottleneck of width ``bottleneck`` with a residual; ``up`` starts at zero.

    ``activation`` is "relu", "gelu", "tanh" or a parameter-free callable applied elementwise.
    ``down`` is ``nn.Linear(d, bottleneck)``, ``up`` is ``nn.Linear(bottleneck, d)``.
    """

    def __init__(self, d: int, bottleneck: int, activation: str | Callable = "gelu", *,
                 dtype: torch.dtype | None = None, device: torch.device | str | None = None):
        super().__init__()
        _check_size(d, "d")
        _check_size(bottleneck, "bottleneck")
        if isinstance(activation, str):
            if activation not in ACTIVATIONS:
                raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)} or a callable, got {activation!r}")
            activation = ACTIVATIONS[activation]
        elif not callable(activation):
            raise TypeError(f"activation must be a name or a callable, got {type(activation).__name__}")
        self.d, self.bottleneck = d, bottleneck
        self.activation = activation
        self.down = nn.Linear(d, bottleneck, dtype=dtype, device=device)  # (m, d), Kaiming-uniform
        self.up = nn.Linear(bottleneck, d, dtype=dtype, device=device)  # (d, m)
        nn.init.zeros_(self.up.weight)  # so h = x at initialisation
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up(self.activation(self.down(x)))  # (..., d) -> (..., m) -> (..., d)

    def extra_repr(self) -> str:
        return f"d={self.d}, bottleneck={self.bottleneck}"


class AdaptedLinear(nn.Module):
    """``adapter(base(x))``: a pretrained layer followed by its adapter (what :func:`insert_adapters` puts in)."""

    def __init__(self, base: nn.Linear, adapter: Adapter):
        super().__init__()
        self.base = base
        self.adapter = adapter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.base(x))


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name), child, module)


def insert_adapters(model: nn.Module, after: Sequence[str], bottleneck: int,
                    activation: str | Callable = "gelu") -> nn.Module:
    """Put an :class:`Adapter` of width ``out_features`` after each ``nn.Linear`` named in ``after``.

    The layer ``name`` becomes an :class:`AdaptedLinear` (``.base`` the original layer, ``.adapter`` the new
    adapter); every parameter of the model other than the adapters' is frozen. The model is changed in
    place and returned. A name that matches no module, or matches one that is not an ``nn.Linear``, raises.
    """
    chosen = select_linears(model, after, "after")
    adapters = [Adapter(layer.out_features, bottleneck, activation, dtype=layer.weight.dtype,
                        device=layer.weight.device)
                for _, layer in chosen]  # built (and their arguments checked) before the model changes
    model.requires_grad_(False)
    for (name, layer), adapter in zip(chosen, adapters):
        _replace(model, name, AdaptedLinear(layer, adapter))
    return model


# -------------------------------------------------------------------------------------------------- QLoRA
class QuantizedLinear(nn.Module):
    """A frozen linear layer whose weight is stored quantized: y = x dequant(W_q)^T + b.

    Buffers (nothing else is stored for the weight): ``"int8-block"``: ``weight_q`` (out, in) int8 and
    ``weight_scale`` (n_blocks,) float32; ``"nf4"``: ``weight_packed`` (ceil(out·in / 2),) uint8,
    ``absmax_q`` (n_blocks,) int8, ``absmax_scale`` (ceil(n_blocks / 256),) float32, ``absmax_mean`` ()
    float32. ``bias`` is the base's, frozen (a buffer).
    """

    STATE = {"int8-block": ("weight_q", "weight_scale"),
             "nf4": ("weight_packed", "absmax_q", "absmax_scale", "absmax_mean")}
    SHARED = ("quant", "block_size", "in_features", "out_features", "bias")

    def __init__(self, base: nn.Linear, quant: str = "nf4", block_size: int = 64):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"base must be a torch.nn.Linear, got {type(base).__name__}")
        if quant not in QUANTS:
            raise ValueError(f"quant must be one of {QUANTS}, got {quant!r}")
        _check_size(block_size, "block_size")
        n = base.weight.numel()
        if n % block_size:
            raise ValueError(f"block_size={block_size} does not divide the {base.out_features}x{base.in_features} = "
                             f"{n} weights of base (no padding rule: choose a divisor)")
        self.in_features, self.out_features = base.in_features, base.out_features
        self.quant, self.block_size = quant, block_size
        self.dtype = base.weight.dtype  # the compute dtype
        w = base.weight.detach().float()  # (out, in), quantized from float32
        if quant == "int8-block":
            q, scale = refq.absmax_quantize(w, block_size=block_size)  # (out, in) int8, (n_blocks,) float32
            self.register_buffer("weight_q", q)
            self.register_buffer("weight_scale", scale)
        else:
            state = refq.nf4_quantize(w, block_size, double_quant=True)
            self.register_buffer("weight_packed", state.packed)  # (ceil(n / 2),) uint8
            self.register_buffer("absmax_q", state.absmax_q)  # (n_blocks,) int8
            self.register_buffer("absmax_scale", state.absmax_scale)  # (ceil(n_blocks / 256),) float32
            self.register_buffer("absmax_mean", state.absmax_mean)  # () float32
        self.register_buffer("bias", None if base.bias is None else base.bias.detach().clone())

    def dequantized_weight(self) -> torch.Tensor:
        """dequant(W_q), (out, in) in the compute dtype; computed in float32 (float64 for a float64 layer)."""
        work = torch.promote_types(self.dtype, torch.float32)
        if self.quant == "int8-block":
            w = refq.absmax_dequantize(self.weight_q, self.weight_scale.to(work), block_size=self.block_size)
        else:
            state = refq.NF4State(self.weight_packed, None, self.absmax_q, self.absmax_scale.to(work),
                                  self.absmax_mean.to(work), torch.Size((self.out_features, self.in_features)),
                                  work, self.block_size)
            w = refq.nf4_dequantize(state)
        return w.to(self.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.dequantized_weight(), self.bias)  # (..., in) -> (..., out); W never stored

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, quant={self.quant!r}, block_size={self.block_size}"


class QLoRALinear(LoRALinear):
    """LoRA (:class:`fmspec.reference.lora.LoRALinear`: A random, B = 0, scaling alpha / r) around a
    :class:`QuantizedLinear` copy of ``base``; the float weight of ``base`` is not kept.

    The quantized state is readable on the layer itself (``weight_q``, ``weight_scale`` or
    ``weight_packed``, ``absmax_q``, ``absmax_scale``, ``absmax_mean``; ``bias``). ``merge()`` returns a
    new ``nn.Linear`` and leaves this layer as it is (the quantized base cannot hold the update).
    """

    def __init__(self, base: nn.Linear, r: int, alpha: float, quant: str = "nf4", block_size: int = 64):
        quantized = QuantizedLinear(base, quant, block_size)  # checks base, quant and block_size
        super().__init__(base, r, alpha)  # A (r, in), B (out, r) in base.weight's dtype; checks r and alpha
        self.base = quantized  # the float weight is dropped: only codes and constants stay

    def __getattr__(self, name: str):
        """``quant``, ``block_size``, ``in_features``, ``out_features``, ``bias`` and the state buffers are the
        quantized base's, read through the layer."""
        base = self.__dict__.get("_modules", {}).get("base")
        if isinstance(base, QuantizedLinear) and name in base.SHARED + base.STATE[base.quant]:
            return getattr(base, name)
        return super().__getattr__(name)

    @torch.no_grad()
    def merge(self) -> nn.Linear:
        """A plain ``nn.Linear`` with weight dequant(W_q) + (alpha / r) B A and the base's bias."""
        merged = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                           dtype=self.A.dtype, device=self.A.device)
        merged.weight.copy_(self.base.dequantized_weight() + self.delta_weight())  # (out, in)
        if self.bias is not None:
            merged.bias.copy_(self.bias)
        return merged

    def unmerge(self) -> None:
        raise TypeError("a QLoRALinear is never merged in place: merge() returns a new nn.Linear")

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}"


def apply_qlora(model: nn.Module, targets: Sequence[str], r: int, alpha: float, quant: str = "nf4",
                block_size: int = 64) -> nn.Module:
    """Replace every ``nn.Linear`` named in ``targets`` (full name or "." + suffix) by a :class:`QLoRALinear`;
    freeze every other parameter. The model is changed in place and returned; bad targets or arguments
    raise before anything changes."""
    chosen = select_linears(model, targets, "targets")
    wrapped = [QLoRALinear(layer, r, alpha, quant, block_size) for _, layer in chosen]
    model.requires_grad_(False)
    for (name, _), layer in zip(chosen, wrapped):
        _replace(model, name, layer)
    return model

