"""Memory instruments shared by the suites (imported ``as mem``): what a computation allocates and what
autograd keeps for the backward pass, counted in elements.

``saved_tensors`` counts what autograd keeps for the backward pass, through
``torch.autograd.graph.saved_tensors_hooks``: every tensor an operation saves passes through the pack
hook. Memory is counted per storage, in elements of the saved tensor's dtype, each storage once (three
views of one buffer hold one buffer), floating-point only (boolean masks and integer indices are
bookkeeping, not activations), and never the parameters (given by ``exclude``); ``shapes`` lists the
shape of every tensor saved, whatever its dtype, repeats included::

    with saved_tensors(exclude=model.parameters()) as saved:
        loss = model(x).sum()
    saved.elements            # what the graph holds for backward
    saved.by_shape            # {(2, 4, 5, 5): 200, ...}: elements per saved shape
    saved.shapes              # [(2, 4, 5, 5), (2, 4, 5, 5), (8,), ...]: every saved tensor's shape

A checkpointing implementation that keeps tensors alive outside autograd's saved tensors (in a closure,
an attribute) is not seen; torch's own checkpoint saves its inputs through a custom Function, which is.

``saved_tensors_hooks`` nest: only the innermost pair runs, so a checkpointing implementation that installs
its own hooks (torch's non-reentrant checkpoint, selective checkpointing) hides what it keeps from an outer
counter. ``held_tensors`` does not depend on how tensors are kept: a TorchDispatchMode notes every storage
an aten operation allocates (weak references only); what is still alive after the forward pass, less the
outputs, is what the graph (or anything else) holds for the backward pass::

    with held_tensors() as held:
        y = candidate.checkpoint.checkpoint_sequential(blocks, x, 3)
    held.elements(exclude=[y])    # floating-point elements still allocated, y's storage left out

``op_outputs`` records the shape of every tensor an aten operation produces, to see what a forward pass
allocates. ``LargestAllocation`` records the largest single storage a torch function returns or autograd
saves: an O(T·W) method must never hold a T×T matrix, even briefly.
"""

from __future__ import annotations

import gc
import weakref
from collections import Counter
from contextlib import contextmanager
from typing import Iterable, Iterator

import torch
from torch.overrides import TorchFunctionMode

from fmspec import isolate
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class SavedTensors:
    """What :func:`saved_tensors` saw: unique floating-point storages saved for backward."""

    def __init__(self, exclude: Iterable[torch.Tensor] = ()):
        self.excluded = {_key(t) for t in exclude}
        self.storages: dict[tuple, int] = {}  # storage key -> elements
        self.by_shape: Counter = Counter()  # shape of the first tensor seen on a storage -> its storage's elements
        self.shapes: list[tuple[int, ...]] = []  # every saved tensor's shape, any dtype, repeats included

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(t.shape))
        key = _key(t)
        if t.is_floating_point() and key not in self.excluded and key not in self.storages:
            n = t.untyped_storage().nbytes() // t.element_size()
            self.storages[key] = n
            self.by_shape[tuple(t.shape)] += n
        return t

    @property
    def elements(self) -> int:
        return sum(self.storages.values())


def _key(t: torch.Tensor) -> tuple:
    return (t.device.type, t.untyped_storage().data_ptr() or id(t.untyped_storage()))  # meta: data_ptr 0


@contextmanager
def saved_tensors(exclude: Iterable[torch.Tensor] = ()) -> Iterator[SavedTensors]:
    """Count what autograd saves for backward inside the block (see the module docstring)."""
    record = SavedTensors(exclude)
    with torch.autograd.graph.saved_tensors_hooks(record.pack, lambda t: t):
        yield record


class _Mode(TorchDispatchMode):
    """A dispatch mode that never wakes torch._dynamo (whose import rebinds torch.manual_seed, which the
    suite's guard against monkeypatching would report)."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False


class _OpOutputs(_Mode):
    def __init__(self):
        super().__init__()
        self.shapes: list[tuple[str, tuple[int, ...]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.is_floating_point():
                self.shapes.append((func.overloadpacket.__name__, tuple(t.shape)))
        return out


@contextmanager
def op_outputs() -> Iterator[list[tuple[str, tuple[int, ...]]]]:
    """``(op name, shape)`` of every floating-point tensor an aten operation produces inside the block."""
    mode = _OpOutputs()
    with mode:
        yield mode.shapes


class _Allocations(_Mode):
    """Weak references to every floating-point storage an aten operation allocates (not views, not in-place)."""

    def __init__(self):
        super().__init__()
        self.storages: dict[int, tuple[weakref.ref, int]] = {}  # data_ptr -> (storage, elements)
        self.remote: list = []  # calls into an isolated candidate's process made meanwhile (fmspec/isolate.py)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.is_floating_point() and t.device.type != "meta":
                storage = t.untyped_storage()
                if storage.nbytes() and storage.data_ptr() not in inputs:
                    self.storages[storage.data_ptr()] = (weakref.ref(storage), storage.nbytes() // t.element_size())
        return out

    def elements(self, exclude: Iterable[torch.Tensor] = ()) -> int:
        """Elements of the storages allocated inside the block and still alive, less ``exclude``'s storages."""
        gc.collect(1)  # young cycles only: a full collection costs ~0.3 s once torch and pytest are loaded
        skip = {t.untyped_storage().data_ptr() for t in exclude}
        here = sum(n for ptr, (ref, n) in self.storages.items() if ref() is not None and ptr not in skip)
        return here + (isolate.held_elements(self.remote) if self.remote else 0)  # what its process holds


@contextmanager
def held_tensors() -> Iterator[_Allocations]:
    """Track the storages allocated inside the block; ``.elements(exclude=[outputs])`` after it (module docstring)."""
    mode = _Allocations()
    isolate.HELD.append(mode)  # calls into an isolated candidate count there too (--fmspec-isolate)
    try:
        with mode:
            yield mode
    finally:
        isolate.HELD.remove(mode)


class LargestAllocation(TorchFunctionMode):
    """Records the largest tensor storage (in elements) that a torch function returns in the forward pass,
    and the largest tensor autograd saves for the backward pass.

    Views count as the storage they share, so an ``expand`` costs nothing and a gathered copy costs all
    of it. (A ``TorchFunctionMode`` plus ``saved_tensors_hooks``: neither imports torch's compiler stack,
    which would rebind torch attributes the plugin guards; the dispatch modes above opt out of it.)::

        with LargestAllocation() as probe:
            out = f(q, k, v); out.sum().backward()
        probe.numel, probe.op, probe.shape
    """

    def __init__(self):
        super().__init__()
        self.numel = 0
        self.op = None
        self.shape = None
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    def _note(self, t, op: str) -> None:
        if isinstance(t, torch.Tensor):
            n = t.untyped_storage().nbytes() // max(t.element_size(), 1)
            if n > self.numel:
                self.numel, self.op, self.shape = n, op, tuple(t.shape)

    def _pack(self, t):
        self._note(t, "saved for backward")
        return t

    def __enter__(self):
        self._hooks.__enter__()
        return super().__enter__()

    def __exit__(self, *exc):
        super().__exit__(*exc)
        return self._hooks.__exit__(*exc)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            self._note(t, getattr(func, "__name__", str(func)))
        return out
