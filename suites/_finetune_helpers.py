"""Oracles and inputs for suites/test_finetune.py (imported ``as fh``).

The QLoRA oracles read the candidate's own quantized state (the buffers the contract names) and
dequantize it in float64 with the quant component's reference dequantizers (``reference/quant.py``,
itself checked by suites/test_quant.py against its formulas), so that a forward pass, a gradient or a
merge is judged against what the layer actually stores, and the stored state is judged, separately,
against the weight it quantized.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import pytest
import torch
from torch import nn

import fmspec.reference.quant as refq  # the oracle's dequantizer (quant's reference), never an answer key here
from fmspec.suites._lora_helpers import lora_oracle, lora_terms, set_ab, toy  # noqa: F401  (shared with lora)
from fmspec.suites import asserts as ah
from fmspec.suites import strategies as ss

AD, IA = "finetune.Adapter", "finetune.insert_adapters"
QL, AQ = "finetune.QLoRALinear", "finetune.apply_qlora"
QUANTS = ("nf4", "int8-block")
ACTIVATIONS = {"relu": torch.relu, "gelu": torch.nn.functional.gelu, "tanh": torch.tanh}
NF4_LEVELS = torch.tensor(refq.NF4_LEVELS, dtype=torch.float64)  # QLoRA appendix E (checked by test_quant)


# ------------------------------------------------------------------------------------------------ inputs
def make_base(n_in: int, n_out: int, seed: int, dtype: torch.dtype = torch.float64, bias: bool = True) -> nn.Linear:
    base = nn.Linear(n_in, n_out, bias=bias, dtype=dtype)
    with torch.no_grad():
        base.weight.copy_(ss.randn((n_out, n_in), seed))
        if bias:
            base.bias.copy_(ss.randn((n_out,), seed + 1))
    return base


def trainable(module: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(n, p) for n, p in module.named_parameters() if p.requires_grad]


TOY_LINEARS = ("attn.q", "attn.k", "attn.v", "fq", "mlp.0", "mlp.2")
# targets, the module names they must select, and (in, out) of each
TARGET_CASES = [
    (("q", "v"), {"attn.q": (8, 8), "attn.v": (8, 8)}),
    (("attn.k", "mlp.2"), {"attn.k": (8, 8), "mlp.2": (16, 8)}),
    (("fq", "0"), {"fq": (8, 8), "mlp.0": (8, 16)}),
]
BAD_TARGETS = [["nope"], ["q", "nope"], ["norm"]]
BAD_TARGET_IDS = ["unknown", "one-unknown", "not-linear"]


def toy_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The toy's Linear layers by name (the objects, to check later which were replaced)."""
    return {name: model.get_submodule(name) for name in TOY_LINEARS}


def assert_only_targets_replaced(model: nn.Module, layers: dict, wrapped, where: str) -> None:
    """Every Linear of the toy that is no target is still the very layer it was."""
    __tracebackhide__ = True
    for name in TOY_LINEARS:
        if name not in wrapped:
            assert model.get_submodule(name) is layers[name], f"{name} was changed but is no target [{where}]"


def assert_only_these_train(model: nn.Module, ids: set, what: str, where: str) -> None:
    """No trainable parameter of ``model`` but those whose id is in ``ids``."""
    __tracebackhide__ = True
    others = [n for n, p in trainable(model) if id(p) not in ids]
    assert not others, f"parameters other than {what} train: {others} [{where}]"


def assert_toy_untouched(model: nn.Module, fn: str) -> None:
    """After a call that raised: nothing frozen, no layer replaced."""
    __tracebackhide__ = True
    assert all(p.requires_grad for p in model.parameters()), f"a failed {fn} froze parameters"
    assert all(isinstance(model.get_submodule(n), nn.Linear) for n in TOY_LINEARS), f"a failed {fn} replaced layers"


def raises_naming(argument: str):
    """The contract's bad-argument error: ValueError (or TypeError) whose message names ``argument`` as a word."""
    return pytest.raises((ValueError, TypeError), match=rf"\b{argument}\b")


# --------------------------------------------------------------------------------------- adapter oracle
def adapter_oracle(x: torch.Tensor, Wd: torch.Tensor, bd: torch.Tensor, Wu: torch.Tensor, bu: torch.Tensor,
                   activation: str) -> torch.Tensor:
    """h = x + f(x Wd^T + bd) Wu^T + bu, in float64."""
    x = x.double()
    return x + ACTIVATIONS[activation](x @ Wd.double().T + bd.double()) @ Wu.double().T + bu.double()


def adapter_terms(x: torch.Tensor, Wd: torch.Tensor, bd: torch.Tensor, Wu: torch.Tensor, bu: torch.Tensor) -> float:
    """The size of the terms behind an element of h, inner sum included (f is 1-Lipschitz, gelu nearly):
    max(|x| + (|x| |Wd|^T + |bd|) |Wu|^T + |bu|), for ``assert_close(scale=)``."""
    x = x.double().abs()
    return (x + (x @ Wd.double().abs().T + bd.double().abs()) @ Wu.double().abs().T + bu.double().abs()).max().item()


def adapter_weights(adapter: nn.Module, seed: int) -> tuple[torch.Tensor, ...]:
    """Give the adapter's down and up projections random values (as after training); returns them in float64."""
    values = []
    with torch.no_grad():
        for i, p in enumerate((adapter.down.weight, adapter.down.bias, adapter.up.weight, adapter.up.bias)):
            v = ss.randn(tuple(p.shape), seed + 11 * i, scale=0.5)
            p.copy_(v)
            values.append(v.to(p.dtype).double())
    return tuple(values)


# ---------------------------------------------------------------------------------- QLoRA state oracles
def state_layout(quant: str, n_out: int, n_in: int, block_size: int) -> dict[str, tuple[torch.dtype, tuple]]:
    """The buffers the contract names for ``quant``: name -> (dtype, shape)."""
    n = n_out * n_in
    n_blocks = n // block_size
    if quant == "int8-block":
        return {"weight_q": (torch.int8, (n_out, n_in)), "weight_scale": (torch.float32, (n_blocks,))}
    return {"weight_packed": (torch.uint8, (math.ceil(n / 2),)), "absmax_q": (torch.int8, (n_blocks,)),
            "absmax_scale": (torch.float32, (math.ceil(n_blocks / refq.DOUBLE_QUANT_BLOCK),)),
            "absmax_mean": (torch.float32, ())}


def read_state(layer: nn.Module, quant: str, n_out: int, n_in: int, block_size: int, where: str) -> dict:
    """The layer's quantized state, after checking each tensor is a buffer of the layer with the contract's
    dtype and shape."""
    __tracebackhide__ = True
    buffers = [b for b in layer.buffers()]
    state = {}
    for name, (dtype, shape) in state_layout(quant, n_out, n_in, block_size).items():
        t = getattr(layer, name, None)
        ah.assert_tensor(t, shape, dtype, name=name, where=where)
        assert any(t is b for b in buffers), f"{name} is not a buffer of the layer (not in its state_dict) [{where}]"
        state[name] = t.detach().clone()
    return state


def nf4_codes(packed: torch.Tensor, n: int) -> torch.Tensor:
    """The 4-bit codes, element 2i in the high nibble of byte i and 2i+1 in the low one: (n,) int64."""
    return torch.stack([packed >> 4, packed & 0xF], dim=1).reshape(-1)[:n].long()


def dq_absmax(state: dict) -> torch.Tensor:
    """The double-quantized block constants, back in float64: absmax_q · absmax_scale + absmax_mean."""
    return refq.absmax_dequantize(state["absmax_q"], state["absmax_scale"].double(),
                                  block_size=refq.DOUBLE_QUANT_BLOCK) + state["absmax_mean"].double()


def dequantized(state: dict, quant: str, n_out: int, n_in: int, block_size: int) -> torch.Tensor:
    """dequant(W_q), (out, in) float64, by the reference dequantizer from the candidate's buffers."""
    if quant == "int8-block":
        return refq.absmax_dequantize(state["weight_q"], state["weight_scale"].double(), block_size=block_size)
    nf4 = refq.NF4State(state["weight_packed"], dq_absmax(state), None, None, None,
                        torch.Size((n_out, n_in)), torch.float64, block_size)
    return refq.nf4_dequantize(nf4)


def stored_bits(layer: nn.Module) -> int:
    """Bits of everything the layer stores (buffers and parameters, each tensor once) except A, B and the bias."""
    skip = {id(getattr(layer, name, None)) for name in ("A", "B", "bias")}
    tensors = {id(t): t for t in [*layer.buffers(), *layer.parameters()] if id(t) not in skip}
    return 8 * sum(t.numel() * t.element_size() for t in tensors.values())


def bits_bound(quant: str, n: int, block_size: int) -> int:
    """The formula's bits for ``n`` weights: codes, one constant per block (NF4: int8, plus a float32 step
    per 256 blocks and the float32 mean; int8-block: float32)."""
    n_blocks = n // block_size
    if quant == "int8-block":
        return 8 * n + 32 * n_blocks
    return 8 * math.ceil(n / 2) + 8 * n_blocks + 32 * math.ceil(n_blocks / refq.DOUBLE_QUANT_BLOCK) + 32


# --------------------------------------------------------------------------------------- the QLoRA layer
def qlora(candidate, base: nn.Linear, r: int, alpha: float, quant: str, block_size: int):
    """The candidate's QLoRALinear around ``base``, after checking A and B have the contract's shapes and dtype."""
    where = ah.snippet(QL, f"Linear({base.in_features}, {base.out_features})", r, alpha, quant=quant,
                       block_size=block_size)
    layer = candidate.finetune.QLoRALinear(base, r, alpha, quant=quant, block_size=block_size)
    ah.assert_tensor(layer.A, (r, base.in_features), base.weight.dtype, name="A", where=where)
    ah.assert_tensor(layer.B, (base.out_features, r), base.weight.dtype, name="B", where=where)
    return layer, where


def qlora_case(candidate, dtype, dims, alpha, seed, quant, bias=True):
    """A wrapped layer, its bias and its dequantized weight (float64, from the candidate's buffers)."""
    n_in, n_out, r, block = dims
    base = make_base(n_in, n_out, seed, dtype, bias)
    b = None if base.bias is None else base.bias.detach().double().clone()
    layer, where = qlora(candidate, base, r, alpha, quant, block)
    W = dequantized(read_state(layer, quant, n_out, n_in, block, where), quant, n_out, n_in, block)
    return layer, W, b, where


def trained_qlora_case(candidate, dtype, dims, alpha, seed, quant, bias=True):
    """:func:`qlora_case` with A and B given random values (as after training): layer, W, b, A, B, where."""
    layer, W, b, where = qlora_case(candidate, dtype, dims, alpha, seed, quant, bias)
    A, B = set_ab(layer, seed)
    return layer, W, b, A, B, where


# ----------------------------------------------------------------------------------------- LoRA oracles
def lora_grad_terms(x: torch.Tensor, g: torch.Tensor, W: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                    scaling: float) -> dict[str, float]:
    """For loss = sum(G ∘ h): the largest sum of absolute terms behind an element of dL/dB = s Gᵀ (X Aᵀ),
    dL/dA = s Bᵀ Gᵀ X and dL/dx = G W + s G B A (each a sum over the batch or the features, which may cancel)."""
    x, g, W, A, B = (t.detach().double().abs() for t in (x, g, W, A, B))
    return {"dL/dB": (scaling * g.T @ (x @ A.T)).max().item(), "dL/dA": (scaling * B.T @ g.T @ x).max().item(),
            "dL/dx": (g @ W + scaling * g @ B @ A).max().item()}


def merged_terms(W: torch.Tensor, A: torch.Tensor, B: torch.Tensor, scaling: float) -> float:
    """The largest sum of absolute terms behind an element of the merged weight W + s B A."""
    return (W.double().abs() + scaling * B.double().abs() @ A.double().abs()).max().item()


class DequantLoRA(nn.Module):
    """The comparison for training: plain LoRA on a frozen float64 weight, h = x W^T + b + s x A^T B^T."""

    def __init__(self, W: torch.Tensor, b: torch.Tensor | None, A: torch.Tensor, B: torch.Tensor, scaling: float):
        super().__init__()
        self.register_buffer("W", W.double().clone())
        self.register_buffer("b", None if b is None else b.double().clone())
        self.A = nn.Parameter(A.double().clone())
        self.B = nn.Parameter(B.double().clone())
        self.scaling = scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x @ self.W.T + self.scaling * (x @ self.A.T) @ self.B.T
        return h + self.b if self.b is not None else h


def replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name), child, module)


def assert_within(err: torch.Tensor, bound: torch.Tensor | float, *, name: str, where: str) -> None:
    """Every element of ``err`` is at most ``bound`` (broadcast), with the first offender in the message."""
    __tracebackhide__ = True
    bad = ~(err <= bound)
    if bool(bad.any()):
        i = tuple(int(j) for j in bad.nonzero()[0])
        limit = bound[i] if isinstance(bound, torch.Tensor) and bound.dim() else bound
        raise AssertionError(f"{name}: {int(bad.sum())} elements beyond the bound; first at {i}: "
                             f"{float(err[i]):.6g} > {float(limit):.6g} [{where}]")


def pad_groups(values: torch.Tensor) -> torch.Tensor:
    """(n,) -> (ceil(n / 256), 256), padded with zeros: the double-quantization blocks of the block constants."""
    groups = -(-values.numel() // refq.DOUBLE_QUANT_BLOCK)
    padded = values.new_zeros(groups * refq.DOUBLE_QUANT_BLOCK)
    padded[: values.numel()] = values
    return padded.reshape(groups, refq.DOUBLE_QUANT_BLOCK)


# ------------------------------------------------------------------------------------------------ training
@dataclass
class Task:
    """A fixed regression task: the student (pretrained) MLP must learn the teacher's outputs on x."""

    student: nn.Module
    x: torch.Tensor  # (batch, 8)
    y: torch.Tensor  # (batch, 8) the teacher's outputs
    steps: int
    lr: float


def training_task(steps: int = 40, lr: float = 0.5, batch: int = 64) -> Task:
    """An 8-16-8 tanh MLP (float64); the teacher is the same MLP with a rank-2 change added to each weight,
    so LoRA of rank 2 can learn it exactly."""
    torch.manual_seed(0)  # the student's own weights; nothing of the candidate's depends on it
    student = nn.Sequential(nn.Linear(8, 16, dtype=torch.float64), nn.Tanh(), nn.Linear(16, 8, dtype=torch.float64))
    teacher = copy.deepcopy(student)
    with torch.no_grad():
        for i, layer in enumerate((teacher[0], teacher[2])):
            n_out, n_in = layer.weight.shape
            layer.weight += ss.randn((n_out, 2), 10 + i) @ ss.randn((2, n_in), 20 + i) / n_in ** 0.5
    x = ss.randn((batch, 8), 30)
    with torch.no_grad():
        y = teacher(x)
    return Task(student, x, y, steps, lr)


def train(model: nn.Module, task: Task) -> list[float]:
    """Plain SGD on the mean squared error over the model's trainable parameters; the loss before each step."""
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=task.lr)
    losses = []
    for _ in range(task.steps):
        loss = (model(task.x) - task.y).square().mean()
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return losses
