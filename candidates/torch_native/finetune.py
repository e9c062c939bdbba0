"""finetune from peft: QLoRA's LoRA path is peft's own LoRA ``Linear`` layer, put around a base that stores
the weight quantized and dequantizes it on the fly (peft's LoRA layer takes any base module with
``in_features`` and ``out_features``).

What peft does not provide, and what this module does about it:

- **bottleneck adapters** (Houlsby et al.): peft has none (its adapter methods are LoRA and its variants,
  IA3, prompt and prefix tuning, ...): ``Adapter`` and ``insert_adapters`` are left out (missing).
- **the quantizers**: peft quantizes through backends (bitsandbytes' ``Linear4bit`` and ``Linear8bitLt``
  on CUDA, torchao, GPTQ, ...). None stores the contract's state: bitsandbytes' double quantization codes
  the block constants with an 8-bit dynamic float, not absmax int8, and its 8-bit layer is LLM.int8
  (row-wise, with outliers), not blockwise absmax; torch itself has neither NF4 nor blockwise absmax int8.
  Both quantizers are written below with torch operations, in the contract's layout.
- **merging into a plain layer**: peft's ``merge()`` writes into the base layer's weight (for
  bitsandbytes: dequantize, add, quantize again, so the merged model is quantized once more); the
  contract's ``merge()`` returns a new ``nn.Linear`` with dequant(W_q) + (alpha / r) B A, built here from
  peft's ``get_delta_weight``.
- peft calls the adapter "default" and keeps A and B in ``lora_A["default"].weight`` and
  ``lora_B["default"].weight``: ``A`` and ``B`` here are those parameters, cast to the base's dtype (peft
  creates them in float32 when it cannot read a floating-point weight off the base).
- ``apply_qlora`` wraps each target itself (peft's ``inject_adapter_in_model`` would need peft's private
  custom-module registration for a base type it does not know).
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# QLoRA appendix E: the 16 NF4 levels (float32 values as published)
NF4_LEVELS = (
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
)
SECOND_BLOCK = 256  # blocks of block constants in NF4's double quantization


def _peft_lora():
    import peft.tuners.lora  # imported on first use: the candidate loads (and reports missing features) without it

    return peft.tuners.lora


def _int8_blocks(x: torch.Tensor, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Absmax int8 over flat blocks; the last block may be shorter (zeros pad it). (n,) -> codes (n,), steps."""
    n = x.numel()
    padded = F.pad(x.reshape(-1), (0, -n % block)).reshape(-1, block)  # (n_blocks, block)
    absmax = padded.abs().amax(dim=1)
    c = 127 / torch.where(absmax > 0, absmax, torch.ones_like(absmax))
    return torch.round(padded * c[:, None]).to(torch.int8).reshape(-1)[:n], absmax / 127


def _check_int(value: object, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")


class _QuantizedBase(nn.Module):
    """The frozen base: quantized buffers, y = x dequant(W_q)^T + b."""

    def __init__(self, base: nn.Linear, quant: str, block_size: int):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"base must be a torch.nn.Linear, got {type(base).__name__}")
        if quant not in ("nf4", "int8-block"):
            raise ValueError(f"quant must be 'nf4' or 'int8-block', got {quant!r}")
        _check_int(block_size, "block_size")
        if base.weight.numel() % block_size:
            raise ValueError(f"block_size={block_size} does not divide the {base.weight.numel()} weights of base")
        self.in_features, self.out_features = base.in_features, base.out_features
        self.quant, self.block_size, self.dtype = quant, block_size, base.weight.dtype
        w = base.weight.detach().float()  # (out, in)
        if quant == "int8-block":
            q, step = _int8_blocks(w, block_size)
            self.register_buffer("weight_q", q.reshape(w.shape))
            self.register_buffer("weight_scale", step)
        else:
            blocks = w.reshape(-1, block_size)  # (n_blocks, block)
            absmax = blocks.abs().amax(dim=1)
            normed = blocks / torch.where(absmax > 0, absmax, torch.ones_like(absmax))[:, None]
            levels = torch.tensor(NF4_LEVELS, device=w.device)
            codes = (normed[..., None] - levels).abs().argmin(dim=-1).to(torch.uint8).reshape(-1)
            codes = F.pad(codes, (0, codes.numel() % 2))
            self.register_buffer("weight_packed", codes[0::2] << 4 | codes[1::2])
            mean = absmax.mean()
            q2, step2 = _int8_blocks(absmax - mean, SECOND_BLOCK)
            self.register_buffer("absmax_q", q2)
            self.register_buffer("absmax_scale", step2)
            self.register_buffer("absmax_mean", mean)
        self.register_buffer("bias", None if base.bias is None else base.bias.detach().clone())

    def dequantized_weight(self) -> torch.Tensor:
        work = torch.promote_types(self.dtype, torch.float32)
        n_blocks = self.out_features * self.in_features // self.block_size
        if self.quant == "int8-block":
            w = self.weight_q.to(work).reshape(n_blocks, -1) * self.weight_scale.to(work)[:, None]
        else:
            steps = self.absmax_scale.to(work).repeat_interleave(SECOND_BLOCK)[:n_blocks]
            absmax = self.absmax_q.to(work) * steps + self.absmax_mean.to(work)  # (n_blocks,)
            codes = torch.stack([self.weight_packed >> 4, self.weight_packed & 0xF], dim=1).reshape(-1)
            codes = codes[: n_blocks * self.block_size].long().reshape(n_blocks, -1)
            w = torch.tensor(NF4_LEVELS, dtype=work, device=codes.device)[codes] * absmax[:, None]
        return w.reshape(self.out_features, self.in_features).to(self.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.dequantized_weight(), self.bias)


class QLoRALinear(nn.Module):
    STATE = {"int8-block": ("weight_q", "weight_scale"),
             "nf4": ("weight_packed", "absmax_q", "absmax_scale", "absmax_mean")}

    def __init__(self, base: nn.Linear, r: int, alpha: float, quant: str = "nf4", block_size: int = 64):
        super().__init__()
        quantized = _QuantizedBase(base, quant, block_size)
        _check_int(r, "r")
        if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not math.isfinite(alpha):
            raise ValueError(f"alpha must be a finite number, got {alpha!r}")
        lora = _peft_lora()
        config = lora.LoraConfig(r=r, lora_alpha=alpha)
        with warnings.catch_warnings():  # peft warns on every base type it does not know; this one is meant
            warnings.filterwarnings("ignore", message="Unsupported layer type", category=UserWarning)
            self.layer = lora.layer.Linear(quantized, "default", config=config, r=r, lora_alpha=alpha)
        like = dict(dtype=base.weight.dtype, device=base.weight.device)
        self.layer.lora_A["default"].to(**like)
        self.layer.lora_B["default"].to(**like)

    def __getattr__(self, name: str):
        layer = self.__dict__.get("_modules", {}).get("layer")
        if layer is not None:
            base = layer.base_layer
            if name in ("quant", "block_size", "in_features", "out_features", "bias") or name in self.STATE[base.quant]:
                return getattr(base, name)
        return super().__getattr__(name)

    @property
    def A(self) -> nn.Parameter:  # (r, in)
        return self.layer.lora_A["default"].weight

    @property
    def B(self) -> nn.Parameter:  # (out, r)
        return self.layer.lora_B["default"].weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)

    @torch.no_grad()
    def merge(self) -> nn.Linear:
        base = self.layer.base_layer
        merged = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None, dtype=self.A.dtype,
                           device=self.A.device)
        merged.weight.copy_(base.dequantized_weight() + self.layer.get_delta_weight("default"))
        if base.bias is not None:
            merged.bias.copy_(base.bias)
        return merged


def _matches(name: str, target: str) -> bool:
    return name == target or name.endswith("." + target)


def apply_qlora(model: nn.Module, targets: Sequence[str], r: int, alpha: float, quant: str = "nf4",
                block_size: int = 64) -> nn.Module:
    if isinstance(targets, str) or not targets or not all(isinstance(t, str) and t for t in targets):
        raise ValueError(f"targets must be a non-empty sequence of module names, got {targets!r}")
    chosen = [(name, m) for name, m in model.named_modules() if name and any(_matches(name, t) for t in targets)]
    unmatched = [t for t in targets if not any(_matches(name, t) for name, _ in chosen)]
    if unmatched:
        raise ValueError(f"targets {unmatched!r} match no module of the model")
    for name, module in chosen:
        if not isinstance(module, nn.Linear):
            raise TypeError(f"targets: module {name!r} is a {type(module).__name__}, not an nn.Linear")
    wrapped = [QLoRALinear(module, r, alpha, quant, block_size) for _, module in chosen]
    model.requires_grad_(False)
    for (name, _), layer in zip(chosen, wrapped):
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, layer)
    return model
