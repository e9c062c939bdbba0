"""Isolated grading (``--fmspec-isolate``): each candidate runs in a process of its own.

The pytest process holds the tests, the oracles, the assertions, hypothesis and the results writer; the
candidate process (one per candidate, forked from a forkserver that has imported torch) imports the
candidate through :func:`fmspec.loader.load` and nothing of the suite. The test reaches the candidate
through a :class:`Handle`: ``candidate.attention.scaled_dot_product(q, k, v, causal=True)`` sends the
attribute path and the arguments over a pipe and waits for the answer.

What crosses, and how (:class:`Endpoint` encodes both directions the same way):

- tensors, by value (a CUDA tensor through host memory, back on its device): a new tensor on the other
  side; nothing the candidate keeps can reach the suite's tensors later. A tensor argument the candidate
  modifies in place is modified in the suite too, so ``ah.call`` still fails it;
- numbers, strings, bytes, ``None``, dtypes, devices, sizes, slices, and tuples / lists / dicts / sets of
  them, by value; a ``torch.Generator``, by state (its new state comes back after the call), and torch's
  global CPU generator with every call (one stream across both processes: ``torch.manual_seed`` in the
  test seeds the candidate's dropout);
- shared tensors (:meth:`Endpoint.shared_changes`): a tensor read from the candidate's objects
  (``layer.A``, ``named_parameters()``) is a copy, the same copy each time it is read, kept up to date both
  ways around each call (changed in place here, by a test or an optimizer, it is written there before the
  next call; changed there, here after it). An ``nn.Module`` argument goes by value once per test (sent
  again, it is the same copy there); its parameters and buffers are shared tensors (those that require
  grad are also inputs of the call, so ``torch.autograd.grad(y, params)`` works), lists it keeps (a call
  log several blocks share) are shared lists, and given back (``layer.base``) it is the suite's own object
  unless the candidate replaced its submodules (then a handle). A module pickle cannot carry (a class
  defined in a test) stands there as a module whose forward calls the suite's. A leaf tensor argument that
  requires grad (an optimizer's parameters) is a shared tensor too;
- modules the candidate builds (``gpt.Block(...)``, ``merge()``'s ``nn.Linear``): a module of torch's own
  classes comes back as that class, state by value, forward here; any other as a :class:`RemoteModule`
  (an ``nn.Module`` here: it goes into the suite's modules, ``load_state_dict``, optimizers), its forward
  run there; the parameters and buffers of both are shared tensors, and when a call replaces their parts
  (``apply_lora``) the suite's objects are brought up to date. Sent back, either is the candidate's own.
  An optimizer's ``param_groups`` are handles of its own dicts (``group["lr"] = lr`` sets it there). A
  FlexAttention ``BlockMask`` comes by value, its ``mask_mod`` evaluated there over the whole grid and
  looked up here;
- anything else (functions, modules, classes, iterators, objects) as a handle: the side that holds a
  handle forwards attribute reads and writes, calls, operators, iteration and ``len`` to the owner. The
  candidate process may only call, iterate, index, measure and print the suite's objects (an autodiff
  program ``lambda ops, x: ...``): never read or set their attributes, so it cannot walk from a callback
  to the test's globals or frames. Nested calls are served while a side waits for its answer;
- gradients: with grad enabled, every call goes through :class:`_Bridge` (a custom autograd Function);
  tensor arguments that require grad arrive in the candidate process as leaves that require grad, its
  forward keeps the graph there, and ``backward`` sends the output gradients over and gets the input
  gradients back (the candidate's own parameters accumulate their ``.grad`` in its process; read them
  through the handle: ``layer.weight.grad``). What the call saved for the backward comes back as
  placeholders on the meta device (:class:`_SavedForBackward`), seen by the suite's saved-tensor hooks.
  The same bridge runs the other way for the suite's functions the candidate calls with grad (a piece
  given to its block). A backward that creates a graph (``create_graph=True``: a Hessian-vector product,
  ``torch.autograd.functional.jvp``'s vjp of a vjp) is a bridged call itself (:class:`_BackwardBox`): the
  other side runs it with ``create_graph`` and keeps that graph, and the input gradients come back
  differentiable in the output gradients and in the inputs, to any order. A tensor sent twice to one call
  (one tensor there: a leaf that requires grad, ``ops.add(x, x)``) gets its gradient once. A graph kept
  for the other side goes when the other side's node goes, and a backward frees it unless the other
  side creates a graph (``retain_graph=True`` alone is not seen); one that a backward creating a graph
  went through, and the graph that backward made, keep what their nodes saved until their entry goes
  (see :func:`_run_backward`);
- memory: a call made under the suite's ``mem.held_tensors()`` counts there what it allocates
  (:data:`HELD`); ``held.elements()`` adds what of it is still alive there, less what the call returned;
- exceptions: one the suite raised in a call the candidate made, passed back through the candidate, is
  raised again as itself (a ``CompositionError`` of the suite's pieces keeps its type).

The pytest process enforces the limits: each call waits at most until the test's deadline (pytest-timeout's
limit, or ``--fmspec-call-timeout``); past it, or when the candidate process dies, the process is killed,
the test fails with one line (:class:`CandidateProcessError`, which hypothesis does not catch), every
further call in that test fails at once, and the next test gets a fresh process.

The candidate process is sandboxed (:func:`sandbox`; Linux): a user and mount namespace in which every
mount is read-only, ``/proc`` is hidden, and ``TMPDIR`` and ``/dev/shm`` are private, empty tmpfs; then
it drops every capability and a seccomp filter keeps it from tracing or signalling other processes. It
cannot write the results file, the suites or the hypothesis database, and it cannot read the results key
(:mod:`fmspec.integrity`): neither variable is in its environment, and the key file and the default key
folder are covered (:func:`_key_hiding`). Where the kernel refuses (no unprivileged user namespaces) the
run says so in one line and goes on unsandboxed (without the key's variables, but with its file).

What it executes is recorded there: with ``--fmspec-forbid``, a profiler hook notes every call of a
forbidden function (however captured or renamed, and through ``torch.ops.aten``); code that is the
reference's (its file, or a function whose bytecode is a reference function's) is reported per call.
"""

from __future__ import annotations

import builtins
import contextlib
import ctypes
import hashlib
import io
import operator
import os
import pickle
import shutil
import sys
import tempfile
import time
import traceback
import weakref
from pathlib import Path, PurePath
from types import ModuleType
from typing import Any

from fmspec.outcomes import ExampleTimeout

START_TIMEOUT_S = 120.0  # importing torch and the candidate
MAX_TEXT = 2_000  # a repr or message from the candidate process, cut to this


# the suite's memory counters active now (``mem.held_tensors()``, suites/memory.py): a call made meanwhile
# counts, in the candidate process, what it allocates; each counter's ``remote`` lists those calls, and
# held_elements() asks the candidate process how much of it is still alive
HELD: list = []


def held_elements(records: list) -> int:
    """Elements still alive in the candidate processes, allocated by the calls ``records`` lists
    (``(controller, generation, id)``), less what those calls returned (its copy is the suite's output)."""
    by_iso: dict = {}
    for iso, generation, hid in records:
        by_iso.setdefault(id(iso), (iso, generation, []))[2].append(hid)
    total = 0
    for iso, generation, ids in by_iso.values():
        if iso.generation == generation and iso.proc is not None and iso.dead is None:
            found = iso._quiet_request("held", ids)
            total += found if type(found) is int and found > 0 else 0
    return total


class CandidateProcessError(ExampleTimeout):
    """The candidate process hung, died or broke the protocol. A BaseException (like ExampleTimeout), so
    hypothesis does not catch it and call the dead candidate again: the test ends with this one line."""


class RemoteTraceback(Exception):
    """The traceback of an exception raised in the candidate process (the ``__cause__`` of its copy here)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class _ProtocolError(Exception):
    """The pipe closed, or the other side sent something that is not a message."""


class _SuiteClasses(pickle.Unpickler):
    """Candidate side: a suite module's class, found by the name the pytest process gave its module. A suite
    collected from a checkout names its test modules after the checkout's folder (``suites.test_checkpoint``,
    or ``test_checkpoint`` from the suites folder itself), which only the pytest process's ``sys.path`` can
    import; the same module is ``fmspec.suites.test_checkpoint`` wherever fmspec is installed."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return super().find_class(module, name)
        except ModuleNotFoundError:
            tail = module.split(".", 1)[1] if module.startswith("suites.") else module
            return super().find_class(f"fmspec.suites.{tail}", name)


class _Refuse(pickle.Unpickler):
    """Messages are trees of plain values only: nothing the other side sends can name a class or function."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refused {module}.{name}")


def _loads(data: bytes) -> Any:
    return _Refuse(io.BytesIO(data)).load()


# --------------------------------------------------------------------------------------------- encoding
_ATOMS = (type(None), bool, int, float, str, bytes)
# what the candidate process may do with the suite's objects (no getattr / setattr: see the docstring)
_WORKER_MAY = {"call", "iter", "next", "len", "getitem", "contains", "bool", "repr", "str", "hash", "eq",
               "backward"}  # backward: through a graph of the suite's that a call of the candidate's made
_OPS = {
    "getattr": getattr, "setattr": setattr, "delattr": delattr, "len": len, "iter": iter, "next": next,
    "repr": lambda o: repr(o)[:MAX_TEXT], "str": lambda o: str(o)[:MAX_TEXT], "bool": bool, "hash": hash,
    "dir": lambda o: sorted(dir(o)), "int": int, "float": float, "index": operator.index,
    "contains": operator.contains, "getitem": operator.getitem, "setitem": operator.setitem,
    "delitem": operator.delitem, "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le,
    "gt": operator.gt, "ge": operator.ge, "add": operator.add, "sub": operator.sub, "mul": operator.mul,
    "truediv": operator.truediv, "floordiv": operator.floordiv, "mod": operator.mod, "pow": operator.pow,
    "matmul": operator.matmul, "neg": operator.neg, "pos": operator.pos, "abs": operator.abs,
    "invert": operator.invert, "and": operator.and_, "or": operator.or_, "xor": operator.xor,
    "enter": lambda o: type(o).__enter__(o), "exit": lambda o, *a: type(o).__exit__(o, *a),
    "instancecheck": lambda cls, o: isinstance(o, cls), "subclasscheck": lambda cls, c: issubclass(c, cls),
}


# requests that read the other side's objects without running code that reads shared tensors: no
# shared-tensor exchange around them; nor around ``getattr`` (a property sees the suite's changes at
# the next call; a tensor changed here and read again keeps this side's value: see _known_tensor)
_READS = frozenset({"share", "next", "iter", "len", "repr", "str", "dir", "hash", "bool", "instancecheck",
                    "subclasscheck", "begin", "end", "ship", "run", "last"})


class Endpoint:
    """One side of the pipe: encodes and decodes values, keeps the objects it lent as handles, sends
    requests and serves the other side's requests while it waits for an answer."""

    def __init__(self, conn: Any, worker: bool):
        self.conn = conn
        self.worker = worker
        self.lent: dict[int, Any] = {}  # handle id -> object lent to the other side
        self.ids: dict[int, int] = {}  # id(object) -> handle id
        self.next_id = 1
        self.released: list[int] = []  # handles of the other side's objects no longer held here
        self.handles: "weakref.WeakValueDictionary[int, Handle]" = weakref.WeakValueDictionary()
        self.generation = 0  # of the candidate process (suite side)
        self.plain = False  # encoding a call's result in the candidate process: no grad flags
        self.shipped: dict = {}  # candidate side: the benchmarks' timed calls of this test (Shipped)
        # shared tensors (see shared_changes), for the current test: the suite's modules sent by value
        # (mirror id -> the module, weakly on the suite side) and the tensors read from the candidate's
        # objects (token -> the tensor, until forget()), with each one's state when both sides agreed
        self.mirrors: dict[int, Any] = {}
        self.mirror_ids: dict[int, int] = {}  # suite side: id(module) -> mirror id
        self.dead_mirrors: list[int] = []  # suite side: mirror ids whose module died here, to tell the other side
        self.mirror_of: dict[int, Any] = {}  # candidate side: id(module or tensor of one) -> its key
        self.mirror_shape: dict[tuple, list] = {}  # candidate side: (mirror id, path) -> its submodules then
        self.kept: dict[int, Any] = {}
        self.kept_ids: dict[int, int] = {}  # suite side: id(tensor read) -> its token
        # shared arguments: leaf tensors that require grad (parameters) the suite passed to the candidate
        # (key ("a", id)): weakly held on the suite side, kept on the candidate's (an optimizer holds them)
        self.args: dict[int, Any] = {}
        self.arg_ids: dict[int, int] = {}  # suite side: id(tensor) -> its shared-argument id
        self.dead_args: list[int] = []
        self.graphs: dict[int, tuple] = {}  # graphs of calls the other side made with grad, for their backward
        self.held: dict[int, Any] = {}  # candidate side: what calls made under a suite's memory counter allocated
        # lists kept by the suite's modules sent by value (a call log): one object per list on each side,
        # shared like their tensors (lid -> the list; its state when both sides agreed)
        self.lists: dict[int, list] = {}
        self.lists_agreed: dict[int, tuple] = {}
        self.list_ids: dict[int, int] = {}  # suite side: id(list) -> lid
        self.tracking = 0  # candidate side: within such a call (decoded tensors are allocations it counts)
        self.built: dict[int, tuple] = {}  # candidate side: hid -> what a module given to the suite is made of
        self.raised: dict[int, BaseException] = {}  # suite side: exceptions raised in calls the candidate made
        self.modules: "weakref.WeakValueDictionary[int, Any]" = weakref.WeakValueDictionary()  # hid -> module here
        self.module_hids: "weakref.WeakKeyDictionary[Any, Handle]" = weakref.WeakKeyDictionary()
        self.agreed: dict[Any, tuple] = {}
        self.wait = None  # suite side: a callable(conn) that waits for the next message or raises
        self.owner: Any = _Direct(self)  # what a handle's operations go through (Isolated on the suite side)

    # -- handles
    def lend(self, obj: Any) -> int:
        hid = self.ids.get(id(obj))
        if hid is None:
            hid, self.next_id = self.next_id, self.next_id + 1
            self.lent[hid] = obj
            self.ids[id(obj)] = hid
        return hid

    def release(self, hids: list) -> None:
        for hid in hids if isinstance(hids, list) else []:
            if type(hid) is tuple and len(hid) == 2 and hid[0] == "graph":  # a call's graph, dropped there
                self.graphs.pop(hid[1], None)
                continue
            obj = self.lent.pop(hid, None)
            self.built.pop(hid, None)
            if obj is not None:
                self.ids.pop(id(obj), None)

    # -- values
    def encode(self, obj: Any, sent: list | None = None) -> Any:
        import torch

        kind = type(obj)
        if kind in _ATOMS:
            return obj
        if isinstance(obj, bool):
            return bool(obj)
        if isinstance(obj, int) and not isinstance(obj, Handle):
            return ("int", int(obj))
        if isinstance(obj, float):
            return ("float", float(obj))
        if isinstance(obj, str):
            return ("strs", str(obj))
        if self.worker and self.mirror_of and (not isinstance(obj, torch.Tensor) or not self.plain and sent is None):
            back = self._mirrored(obj)  # a call's result is a new tensor, as in process; a module is itself
            if back is not None:
                return back
        if isinstance(obj, torch.Tensor):
            if not self.worker and sent is not None:
                known = self._known_ref(obj, sent)
                if known is not None:
                    return known
            return self._encode_tensor(obj, sent)
        if isinstance(obj, Handle) and obj._ep is self:
            if obj._gen != self.generation:
                raise CandidateProcessError(_stale(obj))
            return ("back", obj._hid)
        if kind is tuple:
            return ("tuple", [self.encode(x, sent) for x in obj])
        if kind is list:
            return ("list", [self.encode(x, sent) for x in obj])
        if kind is dict:
            return ("dict", [(self.encode(k, sent), self.encode(v, sent)) for k, v in obj.items()])
        if kind in (set, frozenset):
            return (kind.__name__, [self.encode(x, sent) for x in obj])
        if isinstance(obj, torch.dtype):
            return ("dtype", str(obj).removeprefix("torch."))
        if isinstance(obj, torch.device):
            return ("device", str(obj))
        if isinstance(obj, torch.Size):
            return ("size", list(obj))
        if kind is complex:
            return ("complex", obj.real, obj.imag)
        if kind is slice:
            return ("slice", self.encode(obj.start), self.encode(obj.stop), self.encode(obj.step))
        if kind is range:
            return ("range", obj.start, obj.stop, obj.step)
        if obj is Ellipsis:
            return ("ellipsis",)
        if isinstance(obj, PurePath):
            return ("path", str(obj))
        if obj is NotImplemented:
            return ("notimpl",)
        if isinstance(obj, torch.Generator):
            if sent is not None:
                sent.append(obj)
            return ("generator", bytes(obj.get_state().numpy().tobytes()), str(obj.device), len(sent or ()) - 1)
        if not self.worker and isinstance(obj, torch.nn.Module):
            handle = self.module_hids.get(obj)  # one the candidate built: itself there
            if handle is not None and handle._gen == self.generation:
                return ("back", handle._hid)
            return self._encode_module(obj, sent)
        if self.worker and kind.__name__ == "BlockMask" and kind.__module__.startswith("torch.nn.attention"):
            return self._encode_block_mask(obj)
        if self.worker and isinstance(obj, torch.nn.Module) and id(obj) not in self.mirror_of:
            return self._encode_built(obj)  # (one of the suite's that the candidate restructured: a handle)
        return ("handle", self.lend(obj), callable(obj), type(obj).__name__[:80])

    def _known_ref(self, t: Any, sent: list) -> tuple | None:
        """Suite side, a call's tensor argument: ``("known", key, index)`` for a tensor the candidate
        process holds a copy of (read from its objects, or a parameter passed before); a leaf that requires
        grad passed for the first time becomes a shared argument (an optimizer's or ``clip_grad_norm``'s
        parameters: what the candidate does to them, and what the suite does after, reaches the other)."""
        token = self.kept_ids.get(id(t))
        if token is not None and self.kept.get(token) is t:
            sent.append(t)
            return ("known", token, len(sent) - 1)
        aid = self.arg_ids.get(id(t))
        if aid is not None:
            ref = self.args.get(aid)
            if ref is not None and ref() is t:
                sent.append(t)
                return ("known", ("a", aid), len(sent) - 1)
        if t.is_leaf and t.requires_grad:
            aid, self.next_id = self.next_id, self.next_id + 1
            self.args[aid] = weakref.ref(t)
            self.arg_ids[id(t)] = aid
            tree = self._encode_tensor(t, sent)
            self.agreed[("a", aid)] = _tensor_key(t)
            return ("sharedarg", aid, tree)
        return None

    _BLOCK_MASK_FIELDS = ("kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices", "q_num_blocks",
                          "q_indices", "full_q_num_blocks", "full_q_indices")

    def _encode_block_mask(self, bm: Any) -> tuple:
        """Candidate side: a FlexAttention ``BlockMask`` by value: its tile lists, and its ``mask_mod``
        (candidate code) evaluated here over the whole (B, H, Q, KV) grid, as ``create_mask`` evaluates it;
        the suite's copy looks the grid up (see :func:`_grid_mask_mod`)."""
        from torch.nn.attention.flex_attention import create_mask

        fields = [self.encode(getattr(bm, name, None)) for name in self._BLOCK_MASK_FIELDS]
        q_len, kv_len = (int(n) for n in bm.seq_lengths)
        B, H = (int(n) for n in bm.kv_num_blocks.shape[:2])
        try:
            grid = self.encode(create_mask(bm.mask_mod, B, H, q_len, kv_len, device="cpu").to(device="cpu"))
        except Exception as exc:  # noqa: BLE001  the candidate's mask_mod raised: so does the suite's copy
            grid = ("error", f"{type(exc).__name__}: {exc}"[:MAX_TEXT])
        return ("blockmask", [q_len, kv_len], fields, [int(n) for n in bm.BLOCK_SIZE], grid)

    def _encode_built(self, module: Any) -> tuple:
        """Candidate side: an ``nn.Module`` the candidate built, given to the suite: ``("built", handle,
        torch class or None, plain attributes, parameters, buffers, submodules, training)``; its parameters and
        buffers are tensors read (shared from then on). A module of torch's own classes comes back as that class
        (its forward runs in the suite); any other as :class:`RemoteModule` (its forward runs here)."""
        import torch

        plain, self.plain = self.plain, False
        try:
            cls = type(module)
            name = None
            if cls.__module__.startswith("torch.nn.modules.") and getattr(torch.nn, cls.__name__, None) is cls:
                name = cls.__name__
            attrs = []
            if name is not None:
                for k, v in vars(module).items():
                    if not k.startswith("_") and k != "training" and _plain_value(v):
                        attrs.append((k, self.encode(v)))
            params = [(k, None if t is None else self._encode_tensor(t, None)) for k, t in module._parameters.items()]
            buffers = [(k, None if t is None else self._encode_tensor(t, None)) for k, t in module._buffers.items()]
            subs = [(k, None if m is None else self.encode(m)) for k, m in module._modules.items()]
            hid = self.lend(module)
            self.built[hid] = _own_structure(module)
            return ("built", hid, name, attrs, params, buffers, subs, bool(module.training), cls.__name__[:80])
        finally:
            self.plain = plain

    def _encode_module(self, module: Any, sent: list | None = None) -> tuple:
        """Suite side: an ``nn.Module`` argument goes by value, once per test: the candidate process keeps
        its copy (sent again, the module is that same copy there), and its parameters and buffers are
        shared tensors (:meth:`shared_changes`): ``merge()`` writing into a base layer's weight, or a
        backward through the candidate's checkpoint filling the suite's blocks' ``.grad``, shows here."""
        mid = self.mirror_ids.get(id(module))
        if mid is not None and self.mirror(mid) is module:
            return ("module", mid, self._module_inputs(module, sent))
        out = io.BytesIO()
        pickler = pickle.Pickler(out)
        # the candidate's modules inside it (RemoteModule blocks in the suite's model) go as themselves, and
        # a list one of its modules keeps (the call log several blocks share) as a shared list
        lists = {id(v): v for sub in module.modules() for v in vars(sub).values() if type(v) is list}
        pickler.persistent_id = lambda o: self._shared_list(o) if id(o) in lists else self._built_hid(o)
        try:
            pickler.dump(module)
        except (pickle.PicklingError, AttributeError, TypeError):  # a class defined in a test: its forward
            return self._encode_unpicklable(module)  # runs here, called from there
        mid, self.next_id = self.next_id, self.next_id + 1
        self.mirrors[mid] = {path: weakref.ref(sub) for path, sub in module.named_modules(remove_duplicate=False)}
        self.mirror_ids[id(module)] = mid
        self._agree_module(mid, module)
        # the worker side unpickles it (it may import)
        return ("pickled", out.getvalue(), mid, self._module_inputs(module, sent))

    def _encode_unpicklable(self, module: Any) -> tuple:
        """Suite side: a module pickle cannot carry (its class defined inside a test) stands in the candidate
        process as a module whose ``forward`` calls this one (through the autograd bridge the other way) and
        whose parameters and buffers are shared copies (``parameters()`` reads them there)."""
        mid, self.next_id = self.next_id, self.next_id + 1
        self.mirrors[mid] = {path: weakref.ref(sub) for path, sub in module.named_modules(remove_duplicate=False)}
        self.mirror_ids[id(module)] = mid
        self._agree_module(mid, module)
        tensors = [(name, self._encode_tensor(t, None), isinstance(t, torch_parameter()))
                   for name, t in _named_tensors(module)]
        return ("suitemodule", self.lend(module), type(module).__name__[:80], mid, tensors)

    def _module_inputs(self, module: Any, sent: list | None) -> list:
        """A module argument's parameters that require grad are inputs of the call (after it in ``sent``):
        their gradients come back through the bridge, as ``torch.autograd.grad(y, params)`` needs."""
        if sent is None:
            return []
        refs = []
        for name, p in module.named_parameters():
            if p.requires_grad:
                sent.append(p)
                refs.append((len(sent) - 1, name))
        return refs

    def _shared_list(self, obj: list) -> tuple:
        lid = self.list_ids.get(id(obj))
        if lid is None or self.lists.get(lid) is not obj:
            lid, self.next_id = self.next_id, self.next_id + 1
            self.lists[lid] = obj
            self.list_ids[id(obj)] = lid
            self.lists_agreed[lid] = _list_key(obj)
        return ("list", lid, list(obj))

    def list_changes(self) -> list:
        """``[(lid, encoded items)]`` of the shared lists changed on this side since both sides agreed."""
        out = []
        for lid, items in self.lists.items():
            key = _list_key(items)
            if self.lists_agreed.get(lid) != key:
                plain, self.plain = self.plain, True
                try:
                    out.append((lid, self.encode(list(items))))
                finally:
                    self.plain = plain
                self.lists_agreed[lid] = key
        return out

    def apply_lists(self, changes: Any) -> None:
        for lid, tree in changes if isinstance(changes, list) else []:
            items = self.lists.get(lid) if type(lid) is int else None
            value = self.decode(tree)
            if items is not None and isinstance(value, list):
                items[:] = value
                self.lists_agreed[lid] = _list_key(items)

    def _built_hid(self, obj: Any) -> tuple | None:
        """Inside a suite module sent by value: the candidate's objects (modules it built, handles) go as
        themselves; the suite's own local functions (a piece's lambda), which pickle cannot carry, as handles."""
        import types

        import torch

        if isinstance(obj, Handle):
            if object.__getattribute__(obj, "_ep") is self and object.__getattribute__(obj, "_gen") == self.generation:
                return ("back", object.__getattribute__(obj, "_hid"))
            return None
        if isinstance(obj, torch.nn.Module):
            handle = self.module_hids.get(obj)
            return ("back", handle._hid) if handle is not None and handle._gen == self.generation else None
        if isinstance(obj, (types.FunctionType, types.MethodType)) and "<" in obj.__qualname__:
            return ("lent", self.lend(obj), type(obj).__name__)
        return None

    def _agree_module(self, mid: int, module: Any) -> None:
        for name, t in _named_tensors(module):
            self.agreed[(mid, name)] = _tensor_key(t, content=True)
        if self.worker:  # what it was made of when it came (see _mirrored)
            for path, sub in module.named_modules(remove_duplicate=False):
                self.mirror_of[id(sub)] = (mid, path, "module")
                self.mirror_shape[(mid, path)] = _structure(sub)
            self.mirror_of.update({id(t): (mid, name, "tensor") for name, t in _named_tensors(module)})

    def _mirrored(self, obj: Any) -> tuple | None:
        """Candidate side: a module or tensor that is (part of) one of the suite's modules, given back to
        the suite: ``("mirror", id, path, handle)`` for a module or submodule whose submodules are still
        those it came with (the suite gets its own object back: ``layer.base is base``; the handle where
        the suite no longer holds it), ``("shared", [id, name], copy)`` for one of their parameters or
        buffers. A module the candidate restructured (``apply_lora`` replacing layers) goes as a handle."""
        key = self.mirror_of.get(id(obj))
        if key is None:
            return None
        mid, path, kind = key
        if kind == "module":  # with a handle, for a suite module that died meanwhile
            same = self.mirror_shape.get((mid, path)) == _structure(obj)
            return ("mirror", mid, path, ("handle", self.lend(obj), callable(obj), type(obj).__name__[:80])) if same else None
        return ("shared", [mid, path], self._encode_tensor(obj, None)) if self.mirror_tensor(mid, path) is obj else None

    def mirror(self, mid: Any, path: str = "") -> Any:
        """The module of mirror id ``mid`` or its submodule ``path``, or None. The suite side holds each
        weakly: a submodule the test kept (``layers = dict(model.named_modules())``) outlives its parent."""
        found = self.mirrors.get(mid) if type(mid) is int else None
        if found is None or type(path) is not str:
            return None
        if self.worker:
            try:
                return found.get_submodule(path)
            except AttributeError:
                return None
        ref = found.get(path)
        return ref() if ref is not None else None

    def mirror_tensor(self, mid: Any, name: Any) -> Any:
        """The parameter or buffer ``name`` (dotted) of mirror ``mid``, or None."""
        if type(name) is not str:
            return None
        prefix, _, leaf = name.rpartition(".")
        sub = self.mirror(mid, prefix)
        if sub is None:
            return None
        return sub._parameters.get(leaf) if leaf in sub._parameters else sub._buffers.get(leaf)

    def drop_mirrors(self, mids: Any) -> None:
        """Candidate side: the suite's modules that died there are no longer mirrored here."""
        for mid in mids if isinstance(mids, list) else []:
            self.mirrors.pop(mid, None)
            for key in [k for k in self.agreed if type(k) is tuple and k[0] == mid]:
                del self.agreed[key]
            for key in [k for k in self.mirror_shape if k[0] == mid]:
                del self.mirror_shape[key]
            for key in [k for k, v in self.mirror_of.items() if v[0] == mid]:
                del self.mirror_of[key]

    def _shared(self):
        """``(key, tensor)`` of every tensor both sides hold a copy of: the parameters and buffers of the
        suite's modules sent by value (key ``(mirror id, name)``), and the tensors the suite read from the
        candidate's objects (key: a token; see :meth:`_known_tensor`)."""
        for mid, held in list(self.mirrors.items()):
            if self.worker:
                for name, t in _named_tensors(held):
                    yield (mid, name), t
                continue
            alive = [(path, ref()) for path, ref in held.items()]
            alive = [(path, sub) for path, sub in alive if sub is not None]
            if not alive:  # it died here: the candidate side forgets it at the next request
                del self.mirrors[mid]
                self.dead_mirrors.append(mid)
                for key in [k for k in self.agreed if type(k) is tuple and k[0] == mid]:
                    del self.agreed[key]
                continue
            for path, sub in alive:
                for leaf, t in [*sub._parameters.items(), *sub._buffers.items()]:
                    if t is not None:
                        yield (mid, f"{path}.{leaf}" if path else leaf), t
        yield from list(self.kept.items())
        for aid, held in list(self.args.items()):
            t = held if self.worker else held()
            if t is None:
                del self.args[aid]
                self.dead_args.append(aid)
                self.agreed.pop(("a", aid), None)
            else:
                yield ("a", aid), t

    def shared_changes(self) -> list:
        """``[(key, encoded tensor)]`` for every shared tensor changed on this side since both sides last
        agreed: its value (in place), identity, ``requires_grad`` or gradient. The suite side sends them
        before each request (a parameter stepped by the suite's optimizer, a gradient zeroed); the candidate
        side after each (what the candidate's code did to them)."""
        out = []
        for key, t in self._shared():
            state = _tensor_key(t, content=_of_sent_module(key))
            if self.agreed.get(key) != state:
                out.append((key, self._encode_tensor(t, None, read=False)))
                self.agreed[key] = state
        return out

    def forget(self, tokens: Any = None) -> list[int]:
        """Candidate side (no ``tokens``): the tokens of tensors read by the suite that nothing in this
        process holds any more, so nothing here can read or change them: dropped here, and sent to the
        suite side, which drops them too (``tokens``: its copies stay with whoever holds them, as a tensor
        nobody else holds does in process)."""
        if tokens is None:
            tokens = [token for token in self.kept if sys.getrefcount(self.kept[token]) <= 2]
        gone = []
        for token in tokens if isinstance(tokens, list) else []:
            t = self.kept.pop(token, None)
            if t is not None:
                gone.append(token)
                if self.kept_ids.get(id(t)) == token:
                    del self.kept_ids[id(t)]
            self.agreed.pop(token, None)
        return gone

    def apply_shared(self, changes: Any) -> None:
        """Write the other side's changes (:meth:`shared_changes`) into this side's tensors, in place."""
        import torch

        for key, tree in changes if isinstance(changes, list) else []:
            if type(key) is tuple and len(key) == 2 and type(key[0]) is int and type(key[1]) is str:
                current = self.mirror_tensor(key[0], key[1])
            elif type(key) is int:
                current = self.kept.get(key)
            elif type(key) is tuple and len(key) == 2 and key[0] == "a" and type(key[1]) is int:
                current = self.args.get(key[1])
                current = current if self.worker or current is None else current()
            else:
                continue
            value = self._decode_tensor(tree, None) if type(tree) is tuple and tree[:1] == ("tensor",) else None
            if isinstance(current, torch.Tensor) and isinstance(value, torch.Tensor):
                _update(current, value)
                self.agreed[key] = _tensor_key(current, content=_of_sent_module(key))

    def clear_mirrors(self) -> None:
        """At the end of a test: module copies, tensors read and what keeps them are dropped."""
        self.mirrors.clear()
        self.mirror_ids.clear()
        self.dead_mirrors.clear()
        self.mirror_of.clear()
        self.mirror_shape.clear()
        self.kept.clear()
        self.kept_ids.clear()
        self.lists.clear()
        self.lists_agreed.clear()
        self.list_ids.clear()
        self.args.clear()
        self.arg_ids.clear()
        self.dead_args.clear()
        self.graphs.clear()
        self.raised.clear()
        self.agreed.clear()

    def _known_tensor(self, token: int, new: Any) -> Any:
        """Suite side: a tensor of the candidate's read again (``layer.A``, ``named_parameters()``,
        ``buffers()``) is the tensor it was the first time, brought up to date, so that tests comparing
        parameters by identity (``id(p)``, ``t is b``) see what they see in process; and it is a shared
        tensor from then on, so that changing it in place here (``with no_grad(): layer.A.copy_(a)``, an
        optimizer's step) changes the candidate's. (Results of calls are new tensors each time, as in
        process.)"""
        known = self.kept.get(token)
        if known is None or known.shape != new.shape or known.dtype != new.dtype:
            known = self.kept[token] = new
            self.kept_ids[id(new)] = token
        elif self.agreed.get(token) != _tensor_key(known):
            return known  # changed here since (not yet sent): this side's change wins
        else:
            _update(known, new)
        self.agreed[token] = _tensor_key(known)
        return known

    def _encode_tensor(self, t: Any, sent: list | None, read: bool = True) -> tuple:
        import torch

        if t.device.type not in ("cpu", "cuda"):
            raise TypeError(f"isolated mode moves CPU and CUDA tensors only, got one on {t.device}")
        if t.layout != torch.strided:
            t = t.to_dense()
        data = t.detach()
        device = None if data.device.type == "cpu" else str(data.device)  # a CUDA tensor: through host memory
        if device is not None:
            data = data.cpu()
        index = -1
        if sent is not None:
            sent.append(t)
            index = len(sent) - 1
        grad = None
        if not self.plain and t.is_leaf and t.grad is not None:
            grad = self._encode_tensor(t.grad, None)
        token = None
        if self.worker and not self.plain and sent is None and read:  # read, not a call's result
            token = id(t)  # the same parameter or buffer read twice is the same tensor on the suite side
            self.kept[token] = t  # alive (its id not reused) until the test ends: see _known_tensor
            self.agreed[token] = _tensor_key(t)
        return ("tensor", str(t.dtype).removeprefix("torch."), list(t.shape), _tensor_bytes(data),
                bool(t.requires_grad) and not self.plain, isinstance(t, torch.nn.Parameter) and not self.plain,
                index, grad, token, device)

    def decode(self, tree: Any, got: list | None = None) -> Any:
        if type(tree) is not tuple:
            return tree
        tag = tree[0]
        if tag == "tensor":
            return self._decode_tensor(tree, got)
        if tag == "tuple":
            return tuple(self.decode(x, got) for x in tree[1])
        if tag == "list":
            return [self.decode(x, got) for x in tree[1]]
        if tag == "dict":
            return {self.decode(k, got): self.decode(v, got) for k, v in tree[1]}
        if tag in ("set", "frozenset"):
            return (set if tag == "set" else frozenset)(self.decode(x, got) for x in tree[1])
        if tag in ("int", "float", "strs"):
            return {"int": int, "float": float, "strs": str}[tag](tree[1])
        if tag == "handle":
            hid = tree[1]
            if type(hid) is not int:
                raise ValueError("bad handle")
            known = self.handles.get(hid)  # one Handle per object: a test may key a cache on it
            if known is not None:
                return known
            while hid in self.released:  # an old handle of it died meanwhile: this one holds it again
                self.released.remove(hid)
            handle = self.handles[hid] = Handle._make(self, hid, bool(tree[2]), str(tree[3]))
            return handle
        if tag == "back":
            try:
                return self.lent[tree[1]]
            except KeyError:
                raise ValueError("a handle to an object that was released") from None
        import torch

        if tag == "dtype":
            dtype = getattr(torch, tree[1], None)
            if not isinstance(dtype, torch.dtype):
                raise ValueError(f"no dtype {tree[1]!r}")
            return dtype
        if tag == "device":
            return torch.device(tree[1])
        if tag == "size":
            return torch.Size(tree[1])
        if tag == "complex":
            return complex(tree[1], tree[2])
        if tag == "slice":
            return slice(self.decode(tree[1]), self.decode(tree[2]), self.decode(tree[3]))
        if tag == "range":
            return range(tree[1], tree[2], tree[3])
        if tag == "ellipsis":
            return Ellipsis
        if tag == "path":
            return Path(str(tree[1]))
        if tag == "notimpl":
            return NotImplemented
        if tag == "generator":
            gen = torch.Generator(device=tree[2])
            gen.set_state(torch.frombuffer(bytearray(tree[1]), dtype=torch.uint8))
            if got is not None:
                got.append((tree[3], gen, None))
            return gen
        if tag == "pickled" and self.worker:
            unpickler = _SuiteClasses(io.BytesIO(tree[1]))
            unpickler.persistent_load = self._persistent_load
            module = unpickler.load()
            if len(tree) > 2 and type(tree[2]) is int:
                self.mirrors[tree[2]] = module
                self._agree_module(tree[2], module)
                self._module_inputs_here(tree[2], tree[3] if len(tree) > 3 else [], got)
            return module
        if tag == "module" and self.worker:
            module = self.mirrors[tree[1]]
            self._module_inputs_here(tree[1], tree[2] if len(tree) > 2 else [], got)
            return module
        if tag == "suitemodule" and self.worker:
            _, hid, type_name, mid, tensors = tree
            mid_known = self.mirrors.get(mid)
            if mid_known is not None:
                return mid_known
            module = _suite_module_class()(self.decode(("handle", hid, True, str(type_name))))
            for name, t, is_param in tensors:
                *path, leaf = str(name).split(".")
                owner = module
                for part in path:
                    if part not in owner._modules:
                        owner.add_module(part, _suite_module_class()(None))
                    owner = owner._modules[part]
                value = self._decode_tensor(t, None)
                if is_param:
                    owner.register_parameter(leaf, value if getattr(value, "is_leaf", False) and
                                             isinstance(value, torch_parameter()) else torch_parameter()(value))
                else:
                    owner.register_buffer(leaf, value)
            self.mirrors[mid] = module
            self._agree_module(mid, module)
            return module
        if tag == "known" and self.worker:
            key = tree[1]
            t = self.args.get(key[1]) if type(key) is tuple else self.kept.get(key)
            if t is None:
                raise ValueError("a shared tensor that is gone")
            if got is not None:
                got.append((tree[2], t, t._version))
            return t
        if tag == "sharedarg" and self.worker:
            t = self._decode_tensor(tree[2], got)
            self.args[tree[1]] = t
            self.agreed[("a", tree[1])] = _tensor_key(t)
            return t
        if tag == "built" and not self.worker:
            return self._decode_built(tree)
        if tag == "blockmask" and not self.worker:
            from torch.nn.attention.flex_attention import BlockMask

            _, lengths, fields, block_size, grid = tree
            values = [self.decode(f) for f in fields]
            if not all(v is None or isinstance(v, torch.Tensor) for v in values) or values[0] is None:
                raise ValueError("a BlockMask without its tile lists")
            grid = grid if type(grid) is tuple and grid[:1] == ("error",) else self.decode(grid)
            return BlockMask(tuple(int(n) for n in lengths), *values, BLOCK_SIZE=tuple(int(n) for n in block_size),
                             mask_mod=_grid_mask_mod(grid))
        if tag == "mirror" and not self.worker:  # the suite's module (or one of its submodules) itself
            fallback = self.decode(tree[3])
            found = self.mirror(tree[1], tree[2])
            return fallback if found is None else found
        if tag == "shared" and not self.worker:
            found = self.mirror_tensor(tree[1][0], tree[1][1])
            return self.decode(tree[2]) if found is None else found
        raise ValueError(f"unknown value tag {tag!r}")

    def rebuilt(self) -> list:
        """Candidate side, after a call: the modules given to the suite whose parameters, buffers or
        submodules the call replaced (``apply_lora`` swapping a block's layers), encoded again."""
        changed = [hid for hid, was in self.built.items() if hid in self.lent and _own_structure(self.lent[hid]) != was]
        plain, self.plain = self.plain, False
        try:
            return [self._encode_built(self.lent[hid]) for hid in changed]
        finally:
            self.plain = plain

    def _persistent_load(self, ref: tuple) -> Any:
        if ref[0] == "back":
            return self.lent[ref[1]]
        if ref[0] == "list":  # one list, however many modules keep it
            if ref[1] not in self.lists:
                self.lists[ref[1]] = list(ref[2])
                self.lists_agreed[ref[1]] = _list_key(self.lists[ref[1]])
            return self.lists[ref[1]]
        return self.decode(("handle", ref[1], True, ref[2]))

    def _module_inputs_here(self, mid: int, refs: Any, got: list | None) -> None:
        for index, name in refs if isinstance(refs, list) and got is not None else []:
            t = self.mirror_tensor(mid, name)
            if t is not None and type(index) is int:
                got.append((index, t, t._version))

    def _decode_built(self, tree: tuple, refresh: bool = False) -> Any:
        """Suite side: the module the candidate built (see :meth:`_encode_built`), one object per module."""
        import torch

        _, hid, name, attrs, params, buffers, subs, training, type_name = tree
        if type(hid) is not int:
            raise ValueError("bad handle")
        known = self.modules.get(hid)
        handle = self.decode(("handle", hid, True, str(type_name)))
        if known is not None:  # (made of other parts now?) the suite's object, its registrations brought up to date
            for k, v in params:
                known._parameters[str(k)] = None if v is None else self._as_parameter(self.decode(v))
            for k in [k for k in known._parameters if k not in {str(k) for k, _ in params}]:
                del known._parameters[k]
            for k, v in buffers:
                known._buffers[str(k)] = None if v is None else self.decode(v)
            for k in [k for k in known._buffers if k not in {str(k) for k, _ in buffers}]:
                del known._buffers[k]
            new = {str(k): (None if v is None else self.decode(v)) for k, v in subs}
            known._modules.clear()
            known._modules.update({k: m for k, m in new.items() if m is None or isinstance(m, torch.nn.Module)})
            return known
        cls = getattr(torch.nn, name, None) if type(name) is str else None
        if isinstance(cls, type) and issubclass(cls, torch.nn.Module) and cls.__module__.startswith("torch.nn.modules."):
            module = cls.__new__(cls)
            torch.nn.Module.__init__(module)
            for k, v in attrs:
                if type(k) is str and not k.startswith("_"):
                    object.__setattr__(module, k, self.decode(v))
        else:
            module = _remote_module_class()(handle, str(type_name))
        for k, v in params:
            module.register_parameter(str(k), None if v is None else self._as_parameter(self.decode(v)))
        for k, v in buffers:
            module.register_buffer(str(k), None if v is None else self.decode(v))
        for k, v in subs:
            sub = None if v is None else self.decode(v)
            if isinstance(sub, torch.nn.Module) or sub is None:
                module.add_module(str(k), sub)
        object.__setattr__(module, "training", bool(training))
        module.__dict__["_fmspec_ready"] = True
        self.modules[hid] = module
        self.module_hids[module] = handle
        return module

    def _as_parameter(self, t: Any) -> Any:
        import torch

        if isinstance(t, torch.nn.Parameter) or not isinstance(t, torch.Tensor):
            return t
        return torch.nn.Parameter(t, requires_grad=t.requires_grad)

    def _decode_tensor(self, tree: tuple, got: list | None) -> Any:
        import torch

        _, dtype_name, shape, data, requires_grad, is_param, index, grad, *rest = tree
        token = rest[:1]
        device = rest[1] if len(rest) > 1 else None
        dtype = getattr(torch, dtype_name, None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"no dtype {dtype_name!r}")
        if device is not None and not (type(device) is str and device.startswith("cuda")):
            raise ValueError(f"no device {device!r}")
        if len(data) and self.tracking:  # inside a call made under mem.held_tensors(), the copies there
            # (candidate side), and a call's result here: counted allocations, as in process
            t = torch.empty(shape, dtype=dtype)
            t.reshape(-1).view(torch.uint8).copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
        elif len(data):
            t = torch.frombuffer(bytearray(data), dtype=torch.uint8).view(dtype).reshape(shape)
        else:
            t = torch.empty(shape, dtype=dtype)
        if device is not None:
            t = t.to(device)
        if is_param:
            t = torch.nn.Parameter(t, requires_grad=requires_grad)
        elif requires_grad and (dtype.is_floating_point or dtype.is_complex):
            t.requires_grad_(True)
        if grad is not None:
            t.grad = self._decode_tensor(grad, None)
        if token and type(token[0]) is int and not self.worker:
            t = self._known_tensor(token[0], t)
        if got is not None and index >= 0:
            got.append((index, t, t._version))
        return t

    # -- messages
    def send(self, msg: Any) -> None:
        self.conn.send_bytes(pickle.dumps(msg, protocol=5))

    def recv(self) -> Any:
        if self.wait is not None:
            self.wait(self.conn)
        try:
            return _loads(self.conn.recv_bytes())
        except (EOFError, OSError, pickle.UnpicklingError, ValueError, TypeError, IndexError, KeyError,
                AttributeError, MemoryError) as exc:
            raise _ProtocolError(f"{type(exc).__name__}: {exc}") from None

    def decode_reply(self, tree: Any, got: list | None = None) -> Any:
        try:
            return self.decode(tree, got)
        except Exception as exc:  # noqa: BLE001  whatever a broken or hostile message makes decode raise
            raise _ProtocolError(f"undecodable answer ({type(exc).__name__}: {exc})") from None

    def request(self, op: str, *args: Any, sent: list | None = None) -> Any:
        """Send one request and wait for its answer, serving the other side's requests meanwhile.
        Returns ``(value tree, extra)``; an exception raised there is raised here."""
        if not self.worker and (self.mirrors or self.kept or self.args) and op not in _READS and op != "getattr":
            changes, lists = self.shared_changes(), self.list_changes()
            if changes or lists or self.dead_mirrors or self.dead_args:
                dead, self.dead_mirrors = self.dead_mirrors, []
                dead_args, self.dead_args = self.dead_args, []
                self.request("share", changes, dead, dead_args, lists)
        released = self.released[:]  # the same list stays: finalizers append to it
        del self.released[:len(released)]
        self.send(("q", op, args, released))
        while True:
            msg = self.recv()
            if type(msg) is not tuple or not msg or msg[0] not in ("q", "r", "e") \
                    or len(msg) != {"q": 4, "r": 3, "e": 6}[msg[0]]:
                raise _ProtocolError("malformed message")
            if msg[0] == "q":
                self.serve(msg)
            elif msg[0] == "r":
                if not self.worker and isinstance(msg[2], dict) and ("shared" in msg[2] or "gone" in msg[2]
                                                                     or "rebuilt" in msg[2]):
                    try:
                        for tree in msg[2].get("rebuilt") or []:
                            if type(tree) is tuple and tree[:1] == ("built",) and len(tree) == 9:
                                self._decode_built(tree, refresh=True)
                        self.apply_shared(msg[2].get("shared"))
                        self.apply_lists(msg[2].get("lists"))
                        self.forget(msg[2].get("gone") or [])
                    except Exception as exc:  # noqa: BLE001  a hostile or broken answer
                        raise _ProtocolError(f"undecodable module state ({type(exc).__name__}: {exc})") from None
                return msg[1], msg[2]
            else:
                raised = self.raised.pop(msg[5], None) if not self.worker and type(msg[5]) is int else None
                if raised is not None:  # the suite's own exception, through a call of the candidate's
                    raise raised
                raise self._exception(msg[1], msg[2], msg[3], msg[4], msg[5])

    def serve(self, msg: tuple) -> None:
        _, op, args, released = msg
        self.release(released)
        try:
            value, extra = self.perform(op, args)
            reply = ("r", value, extra)
        except (CandidateProcessError, _ProtocolError):
            raise
        except BaseException as exc:  # noqa: BLE001  everything the callee raised goes back to the caller
            if not self.worker and not isinstance(exc, Exception):
                raise  # the suite's own KeyboardInterrupt, pytest-timeout, ExampleTimeout: not the worker's
            origin = None
            if not self.worker:  # kept, so that it comes back as itself if it passes through the candidate
                origin, self.next_id = self.next_id, self.next_id + 1
                self.raised[origin] = exc
            else:
                seen: Any = exc
                for _ in range(8):  # the exception, or what it was raised from
                    if not isinstance(seen, BaseException) or origin is not None:
                        break
                    origin = seen.__dict__.get("_fmspec_origin") if hasattr(seen, "__dict__") else None
                    seen = seen.__cause__ or seen.__context__
            reply = ("e", *self._describe(exc), origin if type(origin) is int else None)
        self.send(reply)

    def perform(self, op: str, args: tuple) -> tuple[Any, Any]:
        if not self.worker and op not in _WORKER_MAY:
            raise PermissionError(f"the candidate process may not {op} the suite's objects")
        if op == "backward" and not self.worker:
            return self.serve_backward(args, self._new_graph_id)
        if op == "call":
            got: list = []
            target, call_args, call_kwargs = self.decode(args[0]), self.decode(args[1], got), self.decode(args[2], got)
            if self.worker:
                return self.encode(target(*call_args, **call_kwargs)), None
            return self._serve_call(target, call_args, call_kwargs, got, len(args) > 3 and args[3] is True,
                                    args[4] if len(args) > 4 else None)
        if op not in _OPS:
            raise ValueError(f"unknown operation {op!r}")
        values = [self.decode(a) for a in args]
        if self.worker and op == "getattr" and len(values) == 2 and values[1] == "param_groups":
            import torch

            if isinstance(values[0], torch.optim.Optimizer):  # group["lr"] = lr sets the optimizer's own
                return ("list", [("handle", self.lend(g), False, "dict") for g in values[0].param_groups]), None
        if op in _BINARY and len(values) == 2:
            return self.encode(_binary_here(op, *values)), None
        return self.encode(_OPS[op](*values)), None

    def _serve_call(self, target: Any, call_args: Any, call_kwargs: Any, got: list, grad: bool, rng: Any) -> tuple:
        """Suite side: a call the candidate process makes of the suite's function (a piece handed to its
        module); with ``grad``, its graph is kept here for the backward that comes through the candidate's
        bridge (:class:`_ReverseBox`)."""
        import torch

        _set_rng(rng)
        with torch.set_grad_enabled(grad or torch.is_grad_enabled()):
            value = target(*call_args, **call_kwargs)
        sent: list = []
        self.plain = True
        try:
            tree = self.encode(value, sent)
        finally:
            self.plain = False
        extra: dict = {"rng": _rng_state()}
        if grad:
            outs = [t for t in sent if isinstance(t, torch.Tensor)]
            diff = [t.requires_grad for t in outs]
            leaves = [(i, a) for i, a, _ in got if isinstance(a, torch.Tensor) and a.requires_grad]
            if any(diff):
                gid, self.next_id = self.next_id, self.next_id + 1
                self.graphs[gid] = ([t if d else None for t, d in zip(outs, diff)], leaves)
                extra["graph"] = gid
            extra["diff"] = diff
        return tree, extra

    def _new_graph_id(self) -> int:
        gid, self.next_id = self.next_id, self.next_id + 1
        return gid

    def serve_backward(self, args: tuple, new_id: Any) -> tuple:
        """Either side: the backward of a call the other side made with grad (its bridge node's backward),
        ``args = (graph id, output gradients, rng, keep[, create])``. Answers ``[[index, input gradient]]``.
        With ``create`` (the other side's backward creates a graph: ``create_graph=True``; one flag per
        output gradient, whether it requires grad there) it is a bridged call of its own: the gradients
        that require grad there are leaves here, the backward creates a graph, and that graph is kept (id
        ``new_id()``) with the input gradients as its outputs and, as its leaves, those output gradients
        (at their positions) and the call's own leaves (at ``len(gradients) +`` their argument index), for
        the backward of the other side's node that the answer becomes there."""
        import torch

        _set_rng(args[2] if len(args) > 2 else None)
        grads = self.decode(args[1])
        create = args[4] if len(args) > 4 else None
        if type(create) is not list:
            result = _run_backward(self.graphs, args[0], grads, len(args) < 4 or args[3] is not False)
            return self.encode(result), {"rng": _rng_state()}
        grads = grads if isinstance(grads, list) else []
        for g, flag in zip(grads, create):
            if flag is True and isinstance(g, torch.Tensor) and (g.is_floating_point() or g.is_complex()):
                g.requires_grad_(True)
        graph = self.graphs.get(args[0]) if type(args[0]) is int else None
        result = _run_backward(self.graphs, args[0], grads, True, create=True)
        if graph is not None:  # the new graph holds nodes of this one: no backward frees them now (see _run_backward)
            self.graphs[args[0]] = (graph[0], graph[1], True)
        outs = [g for _, g in result if isinstance(g, torch.Tensor)]
        self.plain = True  # the answer's grad is the bridge's business, as a call's result
        try:
            tree = self.encode(result)
        finally:
            self.plain = False
        diff = [t.requires_grad for t in outs]
        extra: dict = {"rng": _rng_state(), "diff": diff}
        if any(diff) and graph is not None:
            leaves = [(k, g) for k, g in enumerate(grads) if isinstance(g, torch.Tensor) and g.requires_grad]
            leaves += [(len(grads) + i, leaf) for i, leaf in graph[1]]
            gid = new_id()
            self.graphs[gid] = ([t if d else None for t, d in zip(outs, diff)], leaves, True)
            extra["graph"] = gid
        return tree, extra

    def _describe(self, exc: BaseException) -> tuple:
        base = next((c.__name__ for c in type(exc).__mro__ if getattr(builtins, c.__name__, None) is c
                     and issubclass(c, Exception)), "RuntimeError")
        args = []
        for a in exc.args:
            args.append(a if type(a) in _ATOMS else str(a)[:MAX_TEXT])
        tb = "".join(traceback.format_exception(exc))[-4 * MAX_TEXT:]
        return type(exc).__qualname__[:100], base, args, tb

    def _exception(self, name: str, base: str, args: Any, tb: str, origin: Any = None) -> BaseException:
        cls = getattr(builtins, base, None) if type(base) is str else None
        if not (isinstance(cls, type) and issubclass(cls, Exception)):
            cls = RuntimeError
        if type(args) is not list or not all(type(a) in _ATOMS for a in args):
            args = [str(args)[:MAX_TEXT]]
        if cls.__name__ != name and type(name) is str:
            args = args or [""]
        try:
            exc = cls(*args)
        except Exception:  # noqa: BLE001  e.g. UnicodeDecodeError wants five arguments
            exc = cls(" ".join(map(str, args)))
        where = "the candidate process" if not self.worker else "the suite"
        exc.__cause__ = RemoteTraceback(f"in {where}: {str(tb)[-4 * MAX_TEXT:]}")
        if self.worker and type(origin) is int:
            try:
                exc._fmspec_origin = origin
            except AttributeError:
                pass
        return exc


_HELD_MODE: list = []


def _held_mode_class():
    """Candidate side: weak references to every floating-point storage an aten operation allocates during
    a call made under the suite's ``mem.held_tensors()`` (its counterpart there)."""
    if _HELD_MODE:
        return _HELD_MODE[0]
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    class Held(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.storages: dict[int, tuple] = {}
            self.outputs: set = set()

        @classmethod
        def _should_skip_dynamo(cls) -> bool:
            return False

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            inputs = {t.untyped_storage().data_ptr() for t in tree_leaves((args, kwargs)) if hasattr(t, "untyped_storage")}
            for t in tree_leaves(out):
                if hasattr(t, "untyped_storage") and t.is_floating_point() and t.device.type != "meta":
                    storage = t.untyped_storage()
                    if storage.nbytes() and storage.data_ptr() not in inputs:
                        self.storages[storage.data_ptr()] = (weakref.ref(storage), storage.nbytes() // t.element_size())
            return out

    _HELD_MODE.append(Held)
    return Held


def _grid_mask_mod(grid: Any):
    """Suite side: a ``mask_mod(b, h, q_idx, kv_idx)`` that looks up the candidate's mask_mod evaluated in
    its process over the whole grid (B, H, Q, KV) (vmap-able, as FlexAttention and ``create_mask`` need)."""
    def mask_mod(b, h, q_idx, kv_idx):
        if type(grid) is tuple:  # ("error", what the candidate's mask_mod raised)
            raise RuntimeError(f"the candidate's mask_mod raised {grid[1]}")
        return grid[b if grid.shape[0] > 1 else 0, h if grid.shape[1] > 1 else 0, q_idx, kv_idx]

    return mask_mod


def _no_modes():
    """No torch dispatch mode (a suite's memory counter) while the harness makes its own tensors."""
    from torch.utils._python_dispatch import _disable_current_modes

    return _disable_current_modes()


def _plain_value(v: Any) -> bool:
    """A constructor argument kept on a torch module (``in_features``, ``eps``, ``normalized_shape``)."""
    if type(v) in _ATOMS:
        return True
    return type(v) in (tuple, list) and all(type(x) in _ATOMS for x in v)


def torch_parameter():
    import torch

    return torch.nn.Parameter


_SUITE_MODULE: list = []


def _suite_module_class():
    """Candidate side: a module of the suite's that pickle could not carry (see
    :meth:`Endpoint._encode_unpicklable`): ``forward`` calls the suite's; parameters and buffers are copies."""
    if _SUITE_MODULE:
        return _SUITE_MODULE[0]
    import torch

    class SuiteModule(torch.nn.Module):
        def __init__(self, handle: Any):
            super().__init__()
            self.__dict__["_fmspec_handle"] = handle

        def forward(self, *args: Any, **kwargs: Any) -> Any:
            handle = self.__dict__["_fmspec_handle"]
            if handle is None:
                raise TypeError("a part of a module of the suite's: not callable by itself")
            return handle(*args, **kwargs)

    _SUITE_MODULE.append(SuiteModule)
    return SuiteModule


_REMOTE_MODULE: list = []


def _remote_module_class():
    """``RemoteModule``: an ``nn.Module`` of the suite's standing for a module the candidate built (a
    ``gpt.Block``, a LoRA layer), so that it can go into the suite's modules, ``load_state_dict``, an
    optimizer. Its parameters and buffers are the shared copies of the candidate's (kept in step around every
    call, both ways); its submodules are the candidate's, likewise; ``forward`` runs there, through the
    autograd bridge (the candidate's parameters get their ``.grad`` there, and here after the backward);
    ``train``/``eval`` are done on both sides; any other attribute (``merge``) is the candidate's."""
    if _REMOTE_MODULE:
        return _REMOTE_MODULE[0]
    import torch

    class RemoteModule(torch.nn.Module):
        def __init__(self, handle: Handle, type_name: str):
            super().__init__()
            self.__dict__["_fmspec_handle"] = handle
            self.__dict__["_fmspec_type"] = type_name

        def forward(self, *args: Any, **kwargs: Any) -> Any:
            return self.__dict__["_fmspec_handle"](*args, **kwargs)

        def __getattr__(self, name: str) -> Any:
            try:
                return super().__getattr__(name)
            except AttributeError:
                if name.startswith("__") or name.startswith("_fmspec") or not self.__dict__.get("_fmspec_ready"):
                    raise  # (while it is being built: register_parameter asks hasattr)
                return getattr(self.__dict__["_fmspec_handle"], name)

        def train(self, mode: bool = True):
            torch.nn.Module.train(self, mode)
            self.__dict__["_fmspec_handle"].train(mode)
            return self

        def extra_repr(self) -> str:
            return f"the candidate's {self.__dict__['_fmspec_type']}"

    RemoteModule.__qualname__ = RemoteModule.__name__
    _REMOTE_MODULE.append(RemoteModule)
    return RemoteModule


def _list_key(items: list) -> tuple:
    return (len(items), tuple(map(id, items)))


def _own_structure(module: Any) -> tuple:
    return tuple(tuple((k, id(v)) for k, v in d.items()) for d in (module._parameters, module._buffers, module._modules))


def _named_tensors(module: Any) -> list:
    return [*module.named_parameters(remove_duplicate=False), *module.named_buffers(remove_duplicate=False)]


# candidate side: the state of a shared tensor of a module the suite sent (its frozen weights, its buffers:
# those that do not require grad) includes a digest of its values, since code there may write them through
# ``.data`` (peft's merge: ``weight.data += delta``), which no version counter sees. Other shared tensors are
# left to their version counters: digesting every tensor both sides hold around every call made the gpt
# suite's isolated training runs three times slower, and an optimizer's step is an in-place op they see
_CONTENT_KEYS = False


def _tensor_key(t: Any, content: bool = False) -> tuple:
    """What a shared tensor's change is seen by; ``content``: the tensor is one of a module the suite sent
    (its frozen weights: see _CONTENT_KEYS)."""
    grad = t.grad if t.is_leaf else None
    return (id(t), t._version, t.requires_grad, t.dtype, t.data_ptr(),
            None if grad is None else (id(grad), grad._version),
            _content(t) if content and _CONTENT_KEYS and not t.requires_grad else None)


def _of_sent_module(key: Any) -> bool:
    """A shared tensor's key ``(module id, name)``: a parameter or buffer of a module the suite sent."""
    return type(key) is tuple and key[0] != "a"


def _content(t: Any) -> bytes | None:
    if t.device.type != "cpu" or t.numel() == 0:
        return None
    import torch

    try:
        data = t.detach().contiguous().reshape(-1).view(torch.uint8).numpy()
    except (RuntimeError, TypeError):  # a layout or dtype with no byte view: versions only
        return None
    return hashlib.blake2b(data, digest_size=8).digest()


def _structure(module: Any) -> list:
    return [(name, id(m)) for name, m in module.named_modules(remove_duplicate=False)]


def _update(current: Any, value: Any) -> None:
    """``current`` made equal to ``value`` (a copy from the other side) in place: value, flag, gradient."""
    import torch

    with torch.no_grad():
        if current.shape == value.shape and current.dtype == value.dtype:
            if not torch.equal(current, value):  # unchanged (only its gradient was): its version stays, as
                current.copy_(value)  # a graph that saved it for the backward needs
        else:
            current.data = value.detach()
    if current.is_leaf:
        if current.requires_grad != value.requires_grad and (current.is_floating_point() or current.is_complex()):
            current.requires_grad_(value.requires_grad)
        grad = value.grad
        current.grad = grad if grad is None or grad.shape == current.shape else None


_BINARY = {"eq": "eq", "ne": "ne", "lt": "gt", "le": "ge", "gt": "lt", "ge": "le",
           **{op: f"r{op}" for op in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul",
                                      "and", "or", "xor")}}  # op -> its reflection


def _binary_here(op: str, a: Any, b: Any) -> Any:
    """``a <op> b`` asked by the other side, evaluated here without asking it back: Python's fallback to
    the reflected operation is taken only on an operand of this side (a handle's would forward the
    question to the other side, which would forward it here: ``x == handle`` between two handles would
    never end). Equality falls back to identity, as in Python."""
    for obj, name, other in ((a, op, b), (b, _BINARY[op], a)):
        if isinstance(obj, Handle):
            continue
        method = getattr(type(obj), f"__{name}__", None)
        result = method(obj, other) if method is not None else NotImplemented
        if result is not NotImplemented:
            return result
    if op in ("eq", "ne"):
        return (a is b) == (op == "eq")
    raise TypeError(f"unsupported operand types for {op}: {type(a).__name__!r} and {type(b).__name__!r}")


def _tensor_bytes(t: Any) -> bytes:
    import torch

    if t.numel() == 0:
        return b""
    flat = t.reshape(-1)
    if flat.stride(0) != 1:  # expanded (stride 0) or strided: a dense copy
        flat = torch.empty(flat.shape, dtype=flat.dtype).copy_(flat)
    if flat.dtype == torch.bool:
        flat = flat.to(torch.uint8)
        return flat.numpy().tobytes()
    return flat.view(torch.uint8).numpy().tobytes()


def _stale(handle: "Handle") -> str:
    return (f"{object.__getattribute__(handle, '_label')} belongs to a candidate process that was restarted "
            f"(after it hung or died); it is gone")


# --------------------------------------------------------------------------------------------- handles
class Handle:
    """An object of the other process. Attribute reads and writes, calls, operators, iteration and
    ``len`` are forwarded to it; a tensor comes back as a copy."""

    __slots__ = ("_ep", "_hid", "_type", "_label", "_gen", "__weakref__")

    @classmethod
    def _make(cls, ep: Endpoint, hid: int, is_callable: bool, type_name: str, label: str = "") -> "Handle":
        h = object.__new__(_CallableHandle if is_callable else cls)
        for k, v in (("_ep", ep), ("_hid", hid), ("_type", type_name), ("_label", label or str(type_name)),
                     ("_gen", ep.generation)):
            object.__setattr__(h, k, v)
        weakref.finalize(h, ep.released.append, hid)
        return h

    def _do(self, op: str, *args: Any, label: str | None = None) -> Any:
        ep = object.__getattribute__(self, "_ep")
        return ep.owner.perform(self, op, args, label=label)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__") and name not in ("__name__", "__qualname__", "__doc__"):
            raise AttributeError(name)
        return self._do("getattr", name, label=f"{object.__getattribute__(self, '_label')}.{name}")

    def __setattr__(self, name: str, value: Any) -> None:
        self._do("setattr", name, value)

    def __delattr__(self, name: str) -> None:
        self._do("delattr", name)

    def __repr__(self) -> str:
        try:
            return str(self._do("repr"))
        except BaseException:  # noqa: BLE001  a dead process: still printable in a failure message
            return f"<candidate object {object.__getattribute__(self, '_label')}>"

    def __str__(self) -> str:
        return str(self._do("str"))

    def __dir__(self) -> list:
        return list(self._do("dir"))

    def __iter__(self):
        it = self._do("iter")
        return iter(it) if type(it) is list else it  # a list: the module generator drained there (_drained)

    def __next__(self):
        return self._do("next")

    def __len__(self) -> int:
        return self._do("len")

    def __bool__(self) -> bool:
        return self._do("bool")

    def __hash__(self) -> int:
        return self._do("hash")

    def __int__(self) -> int:
        return self._do("int")

    def __float__(self) -> float:
        return self._do("float")

    def __index__(self) -> int:
        return self._do("index")

    def __contains__(self, item: Any) -> bool:
        return self._do("contains", item)

    def __getitem__(self, key: Any) -> Any:
        return self._do("getitem", key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._do("setitem", key, value)

    def __delitem__(self, key: Any) -> None:
        self._do("delitem", key)

    def __enter__(self):
        return self._do("enter")

    def __exit__(self, *exc: Any):
        return self._do("exit", None, None, None)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis's printer
        printer.text(repr(self))


def _binary(op: str, reverse: bool = False):
    def method(self, other):
        if not reverse:
            return self._do(op, other)
        ep = object.__getattribute__(self, "_ep")  # other <op> self, evaluated where self lives
        return ep.owner.perform(None, op, (other, self), label=object.__getattribute__(self, "_label"))

    method.__name__ = f"__{'r' if reverse else ''}{op}__"
    return method


def _unary(op: str):
    def method(self):
        return self._do(op)

    method.__name__ = f"__{op}__"
    return method


for _op in ("eq", "ne", "lt", "le", "gt", "ge"):
    setattr(Handle, f"__{_op}__", _binary(_op))
for _op in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor"):
    setattr(Handle, f"__{_op}__", _binary(_op))
    setattr(Handle, f"__r{_op}__", _binary(_op, reverse=True))
for _op in ("neg", "pos", "abs", "invert"):
    setattr(Handle, f"__{_op}__", _unary(_op))


class _CallableHandle(Handle):
    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return object.__getattribute__(self, "_ep").owner.call(self, args, kwargs)

    # isinstance(obj, candidate.finetune.Adapter): asked where both live; an object of this side is no
    # instance of a class of the other's
    def __instancecheck__(self, obj: Any) -> bool:
        ep = object.__getattribute__(self, "_ep")
        if not isinstance(obj, Handle):  # a module the candidate built (RemoteModule): asked of the module there
            try:
                obj = ep.module_hids.get(obj) if hasattr(ep, "module_hids") else None
            except TypeError:
                obj = None
        if not isinstance(obj, Handle) or object.__getattribute__(obj, "_ep") is not ep:
            return False
        return bool(self._do("instancecheck", obj))

    def __subclasscheck__(self, cls: Any) -> bool:
        if not isinstance(cls, Handle) or object.__getattribute__(cls, "_ep") is not object.__getattribute__(self, "_ep"):
            return False
        return bool(self._do("subclasscheck", cls))


def _hid(handle: Handle | None) -> tuple:
    return () if handle is None else (("back", object.__getattribute__(handle, "_hid")),)


class _Direct:
    """The candidate process's side of the suite's handles (an autodiff program it was given): a plain
    request, no limits (the suite's code is trusted)."""

    def __init__(self, ep: Endpoint):
        self.ep = ep

    def perform(self, handle: Handle | None, op: str, args: tuple, label: str | None = None) -> Any:
        tree, _ = self.ep.request(op, *_hid(handle), *[self.ep.encode(a) for a in args])
        return self.ep.decode(tree)

    def call(self, handle: Handle, args: tuple, kwargs: dict) -> Any:
        """With grad on and a tensor argument that requires grad, through :class:`_Bridge` (the suite
        keeps the graph; the backward asks it for the input gradients)."""
        import torch

        ep = self.ep
        sent: list = []
        payload = (*_hid(handle), ep.encode(tuple(args), sent), ep.encode(dict(kwargs), sent))
        inputs = [t for t in sent if isinstance(t, torch.Tensor) and t.requires_grad]
        if not (torch.is_grad_enabled() and inputs):
            tree, extra = ep.request("call", *payload, False, _rng_state())
            if isinstance(extra, dict):
                _set_rng(extra.get("rng"))
            return ep.decode(tree)
        box = _ReverseBox(ep, payload, inputs)
        box.indices = [i for i, t in enumerate(sent) if isinstance(t, torch.Tensor) and t.requires_grad]
        outs = _Bridge.apply(box, torch.zeros((), requires_grad=True), *inputs)
        return box.rebuild(outs[1:])


class CandidateProxy:
    """The candidate object of an isolated candidate (``Candidate.obj``): ``proxy.attention`` is a handle
    to the candidate's ``attention`` in its current process (started on first use, again after a restart)."""

    __slots__ = ("_iso",)

    def __init__(self, iso: "Isolated"):
        object.__setattr__(self, "_iso", iso)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        iso = object.__getattribute__(self, "_iso")
        return iso.perform(ROOT, "getattr", (name,), label=name)

    def __repr__(self) -> str:
        return f"<isolated candidate {object.__getattribute__(self, '_iso').spec}>"


ROOT = object()  # the candidate object itself (handle 0 of whichever process is current)


# ----------------------------------------------------------------------------------- suite's controller
class Isolated:
    """One candidate's process, seen from the pytest process: starts it, sends it calls, enforces the
    time limit, restarts it after it hung or died."""

    def __init__(self, spec: str, *, memory_gb: float | None = None, call_timeout: float | None = None,
                 forbid: dict[str, list[str]] | None = None, sandboxed: bool = True, check_reference: bool = True,
                 writable: tuple[str, ...] = ()):
        self.writable = writable
        self.spec = spec
        self.memory_gb = memory_gb
        self.call_timeout = call_timeout
        self.forbid = forbid or {}
        self.sandboxed = sandboxed
        self.check_reference = check_reference
        self.proc = None
        self.ep: Endpoint | None = None
        self.generation = 0
        self.ready: dict = {}
        self.note: str | None = None  # why the sandbox could not be set up (one line), or None
        self.dead: str | None = None  # the current test's candidate process hung or died: why
        self.test_deadline: float | None = None
        self.component: str | None = None
        self.label = ""
        self.private: str | None = None
        self.started = 0
        self.proxy = CandidateProxy(self)

    # -- lifecycle
    def start(self) -> dict:
        """Start the candidate process; returns what it said once ready (its name, or its import error)."""
        ctx = context()
        parent, child = ctx.Pipe(duplex=True)
        self.private = tempfile.mkdtemp(prefix="fmspec-candidate-")
        options = {"memory_gb": self.memory_gb, "sandboxed": self.sandboxed, "private": self.private,
                   "forbid": self.forbid, "writable": self.writable, "reference_dir": _reference_dir() if self.check_reference else ""}
        options["hide"] = _key_hiding(self.spec, [self.private, *self.writable, options["reference_dir"]])
        self.proc = ctx.Process(target=_worker_main, args=(child, self.spec, options), daemon=True,
                                name="fmspec-candidate")
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = ModuleType("__main__")  # the candidate process runs nothing of the caller's main
        try:
            with _without_key_env():  # the forkserver (started by the first start) inherits no key
                self.proc.start()
        finally:
            sys.modules["__main__"] = main
        child.close()
        self.started += 1
        self.generation += 1
        self.ep = Endpoint(parent, worker=False)
        self.ep.generation = self.generation
        self.ep.owner = self
        deadline = time.monotonic() + START_TIMEOUT_S
        self.ep.wait = lambda conn: self._wait(conn, deadline, "starting")
        try:
            self.ready = self.ep.recv()
        except (CandidateProcessError, _ProtocolError) as exc:
            self.ready = {"error": f"the candidate process did not start: {self._death()} ({exc})"}
        if not isinstance(self.ready, dict) or not all(type(k) is str for k in self.ready):
            self.ready = {"error": "the candidate process answered nonsense at start"}
        note = self.ready.get("sandbox")
        self.note = str(note)[:300] if note else None
        if self.component is not None:
            self._quiet_request("begin", self.component)
        return self.ready

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.is_alive():
                proc.kill()
            proc.join(5)
        if self.ep is not None:
            try:
                self.ep.conn.close()
            except OSError:
                pass
        if self.private:
            shutil.rmtree(self.private, ignore_errors=True)
            self.private = None

    def _ensure(self) -> None:
        if self.dead is not None:
            raise CandidateProcessError(self.dead + " (the rest of this test is not run)")
        if self.proc is None:
            self.start()
            if self.ready.get("error"):
                self.dead = str(self.ready["error"])[:MAX_TEXT]
                self.stop()
                raise CandidateProcessError(self.dead)

    # -- tests
    def begin_test(self, component: str | None, timeout: float | None) -> None:
        self.dead = None
        self.component = component
        self.test_deadline = time.monotonic() + timeout if timeout else None
        if self.proc is not None:
            self._quiet_request("begin", component)

    def end_test(self) -> tuple[list[str], list[str]]:
        """After a test: (problems that fail it, flags for the results file)."""
        problems, flags = [], []
        if self.dead is None and self.proc is not None:
            report = self._quiet_request("end")
            if isinstance(report, dict):
                calls = sorted({str(c)[:200] for c in report.get("forbidden", []) or []})
                if calls:
                    problems.append(f"candidate called {', '.join(calls)}, forbidden for this component "
                                    f"(--fmspec-forbid; seen in the candidate process)")
                flags += [str(f)[:300] for f in report.get("reference", []) or []][:5]
        if self.dead is not None:
            problems.append(self.dead)
            self.dead = None
        self.test_deadline = None
        self.component = None
        if self.ep is not None:
            self.ep.clear_mirrors()
        return problems, flags

    def _quiet_request(self, op: str, *args: Any) -> Any:
        ep = self.ep
        self.label = "the harness"
        try:
            tree, _ = self._guarded(lambda: ep.request(op, *[ep.encode(a) for a in args]))
            return ep.decode_reply(tree) if op == "begin" else tree
        except CandidateProcessError:
            return None
        except Exception:  # noqa: BLE001  the candidate process refused: nothing to report
            return None

    # -- calls
    def perform(self, handle: Any, op: str, args: tuple, *, label: str | None = None) -> Any:
        self._ensure()
        ep = self.ep
        if handle is ROOT:
            target = (("back", 0),)
        else:
            if handle is not None and object.__getattribute__(handle, "_gen") != self.generation:
                raise CandidateProcessError(_stale(handle))
            target = _hid(handle)
        self.label = label or (object.__getattribute__(handle, "_label") if isinstance(handle, Handle) else op)
        tree, _ = self._guarded(lambda: ep.request(op, *target, *[ep.encode(a) for a in args]))
        value = self._guarded(lambda: ep.decode_reply(tree))
        if isinstance(value, Handle):
            if op == "getattr" and label:
                object.__setattr__(value, "_label", label)
            elif op in ("iter", "next", "getitem", "enter"):
                object.__setattr__(value, "_label", f"{self.label}[{op}]")
        return value

    def call(self, handle: Handle, args: tuple, kwargs: dict) -> Any:
        """``handle(*args, **kwargs)`` in the candidate process, through :class:`_Bridge` when grad is on."""
        import torch

        self._ensure()
        ep = self.ep
        if object.__getattribute__(handle, "_gen") != self.generation:
            raise CandidateProcessError(_stale(handle))
        self.label = object.__getattribute__(handle, "_label")
        sent: list = []
        payload = (*_hid(handle), ep.encode(tuple(args), sent), ep.encode(dict(kwargs), sent))
        if not torch.is_grad_enabled():
            return self._finish(self._guarded(lambda: ep.request("call", *payload, False, _rng_state(), bool(HELD),
                                                                 _env_state())), sent)
        box = _Box(self, payload, sent)
        box.indices = [i for i, t in enumerate(sent) if isinstance(t, torch.Tensor) and t.requires_grad]
        box.inputs = [sent[i] for i in box.indices]
        with _no_modes():  # the bridge's own bookkeeping: no allocation a suite's memory counter sees
            dummy = torch.zeros((), requires_grad=True)
        outs = _Bridge.apply(box, dummy, *box.inputs)
        return box.rebuild(outs[1:])

    def _finish(self, reply: tuple, sent: list) -> Any:
        """Decode a call's result; write back what the candidate did to the arguments (in-place changes
        of tensors, the state of generators)."""
        import torch

        tree, extra = reply
        self.ep.tracking = bool(HELD)
        try:
            value = self._guarded(lambda: self.ep.decode_reply(tree))
        finally:
            self.ep.tracking = 0
        if isinstance(extra, dict):
            _set_rng(extra.get("rng"))
            if type(extra.get("held")) is int:
                for counter in HELD:
                    remote = getattr(counter, "remote", None)
                    if isinstance(remote, list):
                        remote.append((self, self.generation, extra["held"]))
        mutated = extra.get("mutated", []) if isinstance(extra, dict) else []
        for index, new in mutated if isinstance(mutated, list) else []:
            if type(index) is int and 0 <= index < len(sent):
                new_value = self._guarded(lambda: self.ep.decode_reply(new))
                arg = sent[index]
                if isinstance(arg, torch.Tensor) and isinstance(new_value, torch.Tensor) and arg.shape == new_value.shape:
                    with torch.no_grad():
                        arg.copy_(new_value.to(arg.dtype))
                elif isinstance(arg, torch.Generator) and isinstance(new_value, torch.Tensor):
                    try:
                        arg.set_state(new_value)
                    except RuntimeError:
                        pass
        return value

    def _guarded(self, fn):
        """Run one exchange with the candidate process under the time limit; a hang, a death or a broken
        message kills the process and raises CandidateProcessError."""
        deadline = self._deadline()
        started = time.monotonic()
        label = self.label
        self.ep.wait = lambda conn: self._wait(conn, deadline, label, started)
        try:
            return fn()
        except CandidateProcessError:
            raise
        except _ProtocolError as exc:
            why = self._death()
            self._died(f"candidate process {why} in {label}" + (f" ({exc})" if why == "broke the protocol" else ""))
        except BaseException:  # pytest-timeout or ^C while waiting: the process is mid-call, kill it
            if self.proc is not None and sys.exc_info()[0] is not None and not isinstance(sys.exc_info()[1], Exception):
                self._died(f"candidate process interrupted in {label}", quiet=True)
            raise

    def _deadline(self) -> float | None:
        ends = [d for d in (self.test_deadline,
                            time.monotonic() + self.call_timeout if self.call_timeout else None) if d]
        return min(ends) if ends else None

    def _wait(self, conn: Any, deadline: float | None, label: str, started: float | None = None) -> None:
        started = started or time.monotonic()
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                self._died(f"candidate process hung for {time.monotonic() - started:.0f} s in {label}")
            if conn.poll(min(left, 0.5) if left is not None else 0.5):
                return
            if self.proc is not None and not self.proc.is_alive() and not conn.poll(0):
                self._died(f"candidate process {self._death()} in {label}")

    def _death(self) -> str:
        proc = self.proc
        if proc is None:
            return "died"
        proc.join(1)
        code = proc.exitcode
        if code is None:
            return "broke the protocol"
        if code < 0:
            return f"died (signal {-code})"
        return f"died (exit status {code})"

    def _died(self, reason: str, quiet: bool = False):
        self.dead = reason
        self.stop()
        if not quiet:
            raise CandidateProcessError(reason) from None


# ------------------------------------------------------------------------- benchmarks: the timed calls
class Shipped:
    """A benchmark's timed call run in the candidate process: ``target`` (and ``setup``, pytest-benchmark's
    per-round setup returning ``(args, kwargs)``) are the suite's code, sent there by value (cloudpickle)
    once; the candidate's objects they hold (the candidate, its namespaces and functions, the modules it
    built) go as themselves, the suite's tensors and modules as a call's arguments do. Each call runs one
    round there and returns nothing: the output stays there until :meth:`last` fetches it (the spot check
    of ``fmspec.benchutil``). Grad mode, torch's thread count and the global generator are the suite's."""

    def __init__(self, iso: "Isolated", target: Any, setup: Any = None, args: tuple = (), kwargs: dict | None = None):
        import torch

        iso._ensure()
        self.iso, self.generation = iso, iso.generation
        self.has_setup = setup is not None
        ep = iso.ep
        out = io.BytesIO()
        _shipper(ep)(out).dump({"target": target, "setup": setup, "args": tuple(args), "kwargs": dict(kwargs or {}),
                                "last": None})
        iso.label = "a benchmark's timed call"
        tree, _ = iso._guarded(lambda: ep.request("ship", out.getvalue()))
        self.sid = tree
        self._grad = torch.is_grad_enabled

    def _run(self, phase: str) -> None:
        import torch

        iso = self.iso
        iso._ensure()
        if iso.generation != self.generation:
            raise CandidateProcessError("the candidate process was restarted since this benchmark's call was sent")
        iso.label = "a benchmark's timed call"
        ep = iso.ep
        iso._guarded(lambda: ep.request("run", self.sid, phase, self._grad(), torch.get_num_threads(), _rng_state(),
                                        _env_state()))

    def setup(self) -> None:
        if self.has_setup:
            self._run("setup")

    def __call__(self) -> None:
        self._run("target")

    def last(self) -> Any:
        """The output of the last round, here (tensors by value)."""
        iso = self.iso
        iso._ensure()
        ep = iso.ep
        iso.label = "a benchmark's timed call"
        tree, _ = iso._guarded(lambda: ep.request("last", self.sid))
        return iso._guarded(lambda: ep.decode_reply(tree))


def _shipper(ep: "Endpoint"):
    """A cloudpickle pickler whose candidate objects and tensors go as :meth:`Endpoint.encode` sends them."""
    import cloudpickle
    import torch

    import fmspec.suites
    from fmspec import loader

    suites_dir = Path(fmspec.suites.__file__).resolve().parent

    def ref(obj: Any) -> Any:
        if isinstance(obj, ModuleType):  # by the name the candidate process imports it under (_SuiteClasses)
            name, where = obj.__name__, Path(getattr(obj, "__file__", None) or "/").resolve().parent
            if name == "suites":
                return ("module", "fmspec.suites")
            if name.startswith("suites.") or ("." not in name and where == suites_dir):
                return ("module", "fmspec.suites." + name.split(".")[-1])
            return None
        if isinstance(obj, (loader.Candidate, CandidateProxy)):
            return ("back", 0)  # the candidate object there (its namespaces unchecked, as a bench calls them)
        if isinstance(obj, loader.Checked):
            return ("tree", ep.encode(object.__getattribute__(obj, "_namespace")))
        if type(obj).__name__ == "function" and obj.__dict__.get("__fmspec_checked__"):
            return ("tree", ep.encode(obj.__wrapped__))
        if isinstance(obj, (Handle, torch.Tensor, torch.nn.Module, torch.Generator)):
            return ("tree", ep.encode(obj, []))
        return None

    class Shipper(cloudpickle.CloudPickler):
        def persistent_id(self, obj: Any) -> Any:
            return ref(obj)

    return lambda out: Shipper(out, protocol=5)


def _unship(ep: "Endpoint", data: bytes, got: list) -> Any:
    """Candidate side: a :class:`Shipped` call, its references resolved (the suite's data: trusted)."""
    import importlib

    class Unshipper(_SuiteClasses):
        def persistent_load(self, ref: Any) -> Any:
            if ref[0] == "back":
                return ep.lent[ref[1]]
            if ref[0] == "module":
                return importlib.import_module(ref[1])
            return ep.decode(ref[1], got)

    return Unshipper(io.BytesIO(data)).load()


# environment variables a test sets that change what the candidate's code does (the quant and flash suites
# run a candidate's Triton kernels in Triton's interpreter): their values go with every call
MIRRORED_ENV = ("TRITON_INTERPRET",)


def _env_state() -> dict:
    return {name: os.environ.get(name) for name in MIRRORED_ENV}


def _set_env(env: Any) -> None:
    """Candidate side: the suite's values of :data:`MIRRORED_ENV` for this call (unset where unset there)."""
    if type(env) is not dict:
        return
    for name in MIRRORED_ENV:
        value = env.get(name)
        if value is None:
            os.environ.pop(name, None)
        elif type(value) is str:
            os.environ[name] = value


def _tensors_in(value: Any) -> list:
    out: list = []
    _walk_tensors(value, out)
    return out


def _bridged_outputs(box: Any, extra: dict, released: list, floating: bool) -> tuple[list, list[bool]]:
    """After a bridged call's answer (``box.value`` decoded): the id of the graph the other side keeps for it
    (released when ``box`` goes), the output tensors, and which of them carry a graph there (``floating``:
    only floating and complex ones can here)."""
    box.graph = extra.get("graph")
    if type(box.graph) is int:  # its graph there goes when this call's node goes here
        weakref.finalize(box, released.append, ("graph", box.graph))
    box.tensors = []
    _walk_tensors(box.value, box.tensors)
    diff = extra.get("diff") if isinstance(extra.get("diff"), list) else []
    return box.tensors, [i < len(diff) and bool(diff[i]) and (not floating or t.dtype.is_floating_point
                                                               or t.dtype.is_complex)
                         for i, t in enumerate(box.tensors)]


class _Box:
    """One call through :class:`_Bridge`: what to send, and the result's structure once it came back."""

    def __init__(self, iso: Isolated, payload: tuple, sent: list):
        self.iso, self.payload, self.sent = iso, payload, sent
        self.ep = iso.ep
        self.generation = iso.generation
        self.inputs: list = []
        self.graph = None
        self.saved = None  # what the call saved for the backward there (see _SavedForBackward)
        self.value = None
        self.tensors: list = []

    def run(self) -> tuple[list, list[bool]]:
        iso = self.iso
        reply = iso._guarded(lambda: iso.ep.request("call", *self.payload, True, _rng_state(), bool(HELD), _env_state()))
        self.value = iso._finish(reply, self.sent)
        extra = reply[1] if isinstance(reply[1], dict) else {}
        self.saved = extra.get("saved")
        self.generation = iso.generation
        # the candidate's floating outputs that carry a graph there are differentiable here too
        return _bridged_outputs(self, extra, iso.ep.released, floating=True)

    def rebuild(self, outs: tuple) -> Any:
        mapping = {id(old): new for old, new in zip(self.tensors, outs)}
        value = _replace_tensors(self.value, mapping)
        # the outputs' node holds this box (ctx.box): holding them here would be a cycle that keeps the
        # graph there alive (its release goes when this box goes)
        self.value, self.tensors, self.sent = None, [], None
        return value


class _ReverseBox:
    """Candidate side: one call of the suite's function with grad, through :class:`_Bridge`."""

    saved = None
    iso = None
    generation = None

    def __init__(self, ep: Endpoint, payload: tuple, inputs: list):
        self.ep, self.payload, self.inputs = ep, payload, inputs
        self.graph = None
        self.value = None
        self.tensors: list = []

    def run(self) -> tuple[list, list[bool]]:
        tree, extra = self.ep.request("call", *self.payload, True, _rng_state())
        extra = extra if isinstance(extra, dict) else {}
        _set_rng(extra.get("rng"))
        self.value = self.ep.decode(tree)
        return _bridged_outputs(self, extra, self.ep.released, floating=False)

    rebuild = _Box.rebuild


class _BackwardBox:
    """A backward through :class:`_Bridge` that creates a graph (``create_graph=True``, a double backward:
    ``torch.autograd.functional.jvp``'s vjp of a vjp, a Hessian-vector product), made a bridged call of its
    own, either way: the other side runs the backward of ``box``'s call with ``create_graph`` and keeps that
    graph (:meth:`Endpoint.serve_backward`); the input gradients come back as outputs of a bridge node here
    whose inputs are the output gradients that require grad and the call's inputs, and whose backward asks
    the other side again (and, creating a graph in turn, is one of these itself). Its graph there goes when
    this node goes; the call's own graph there goes with the call's node, as before."""

    saved = None

    def __init__(self, box: Any, grads: list):
        import torch

        self.iso, self.ep, self.generation = box.iso, box.ep, box.generation
        self.call_graph = box.graph
        self.grads = [g.detach() if isinstance(g, torch.Tensor) else None for g in grads]
        self.flags = [isinstance(g, torch.Tensor) and g.requires_grad for g in grads]
        n = len(grads)
        self.inputs = [g for g, f in zip(grads, self.flags) if f] + list(box.inputs)
        self.indices = [k for k, f in enumerate(self.flags) if f] + [n + i for i in box.indices]
        self.graph = None
        self.value = None
        self.tensors: list = []

    def run(self) -> tuple[list, list[bool]]:
        grads, self.grads = self.grads, None
        self.value, extra = _ask(self, "backward", self.call_graph, self.ep.encode(grads), _rng_state(), True,
                                 self.flags)
        return _bridged_outputs(self, extra, self.ep.released, floating=True)

    rebuild = _Box.rebuild


def _ask(box: Any, op: str, *args: Any) -> tuple[Any, dict]:
    """Send a request of a bridge node's (``box``: the call it stands for) to the side that holds its graph;
    returns the decoded answer and its extra (the generator's state is taken from it). From the suite, under
    the test's time limit, and only to the candidate process that made the call."""
    iso = box.iso
    if iso is None:
        tree, extra = box.ep.request(op, *args)
        value = box.ep.decode(tree)
    else:
        if box.generation != iso.generation or box.ep is not iso.ep:
            raise CandidateProcessError("the backward of a call whose candidate process was restarted")
        ep = iso.ep
        tree, extra = iso._guarded(lambda: ep.request(op, *args))
        value = iso._guarded(lambda: ep.decode_reply(tree))
    extra = extra if isinstance(extra, dict) else {}
    _set_rng(extra.get("rng"))
    return value, extra


def _walk_tensors(value: Any, out: list) -> None:
    import torch

    if isinstance(value, torch.Tensor):
        out.append(value)
    elif type(value) in (tuple, list):
        for v in value:
            _walk_tensors(v, out)
    elif type(value) is dict:
        for v in value.values():
            _walk_tensors(v, out)


def _replace_tensors(value: Any, mapping: dict) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return mapping.get(id(value), value)
    if type(value) is tuple:
        return tuple(_replace_tensors(v, mapping) for v in value)
    if type(value) is list:
        return [_replace_tensors(v, mapping) for v in value]
    if type(value) is dict:
        return {k: _replace_tensors(v, mapping) for k, v in value.items()}
    return value


def _bridge_class():
    import torch

    class Bridge(torch.autograd.Function):
        """Outputs of a call in the candidate process, tied to its inputs here: the backward sends the
        output gradients to the candidate process (which keeps the forward's graph) and returns the input
        gradients it computed."""

        @staticmethod
        def forward(ctx, box, dummy, *inputs):
            tensors, diff = box.run()
            ctx.box = box
            ctx.diff = diff
            if box.saved:  # what the candidate saved, seen by the suite's saved_tensors_hooks (no memory)
                ctx.save_for_backward(*_placeholders(box.saved))
            with _no_modes():
                anchor = dummy.new_zeros(())  # forward must return a tensor, even for a call that returns none
            ctx.mark_non_differentiable(anchor, *[t for t, d in zip(tensors, diff) if not d])
            return (anchor, *tensors)

        @staticmethod
        def backward(ctx, _anchor, *grads):
            box = ctx.box
            if box.graph is None:
                return (None, None, *[None] * len(box.inputs))
            grads = [g if d else None for g, d in zip(grads, ctx.diff)]
            if box.iso is not None:
                box.iso.label = f"the backward of {box.iso.label}"
            if torch.is_grad_enabled():  # create_graph (which retains the graph there): a bridged call itself,
                # so that the input gradients are differentiable here (in the gradients and in the inputs)
                back = _BackwardBox(box, grads)
                with _no_modes():
                    dummy = torch.zeros((), requires_grad=True)
                outs = _Bridge.apply(back, dummy, *back.inputs)
                return (None, None, *_input_grads(back.rebuild(outs[1:]), box.inputs, box.indices))
            # else the graph there is freed, as autograd frees this one (what it saved through a pack hook
            # can hold a cycle nothing else frees)
            value, _ = _ask(box, "backward", box.graph, box.ep.encode(list(grads)), _rng_state(), False)
            return (None, None, *_input_grads(value, box.inputs, box.indices))

    return Bridge


class _LazyBridge:
    cls = None

    def apply(self, *args):
        if _LazyBridge.cls is None:
            _LazyBridge.cls = _bridge_class()
        return _LazyBridge.cls.apply(*args)


_Bridge = _LazyBridge()


# --------------------------------------------------------------------------------------- identity, start
def context():
    """The multiprocessing context of candidate processes: a forkserver that has imported torch (a
    fresh candidate process in tens of milliseconds), spawned, not forked, from the pytest process."""
    import multiprocessing as mp

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "fmspec.isolate", "fmspec.loader"])
    return ctx


def identity(spec: str) -> tuple[str, str, str, str]:
    """``(spec for the worker, name, source, version)`` of a candidate, without importing it here; a name
    the candidate sets (``CANDIDATE_NAME``) or a module version comes from its process later."""
    from fmspec import loader

    spec = spec.strip()
    named = loader._NAMED.match(spec)
    if named:
        inner, name, source, version = identity(named.group(2))
        return f"{named.group(1)}={inner}", named.group(1), source, version
    if spec.endswith(".py") or "/" in spec or spec.startswith("."):
        path = Path(spec).expanduser().resolve()
        version = f"sha256:{loader.source_digest(path).hexdigest()[:12]}" if path.exists() else "unknown"
        return str(path), path.stem, f"path {path}", version
    eps = loader.entry_points()
    if spec in eps:
        ep = eps[spec]
        return spec, spec, f"entry point {spec} = {ep.value}", ep.dist.version if ep.dist else "unknown"
    return spec, spec, f"module {spec}", "unknown"


class _without_key_env:
    """The results key's variables (:mod:`fmspec.integrity`) out of this process's environment for the
    duration (a process started meanwhile inherits neither), put back after."""

    def __enter__(self):
        from fmspec import integrity

        self.saved = {k: os.environ.pop(k) for k in (integrity.KEY_ENV, integrity.KEY_FILE_ENV) if k in os.environ}
        return self

    def __exit__(self, *exc):
        os.environ.update(self.saved)
        return False


def _key_hiding(spec: str, needed: list[str]) -> list[tuple[str, str]]:
    """What the sandbox covers so that the candidate process cannot read the results key: ``("dir", D)``,
    an empty read-only tmpfs over the key file's folder, where that folder holds nothing the candidate
    process needs (its private and writable folders, ``sys.path``, the candidate's file); else
    ``("file", F)``, ``/dev/null`` over the key file. Both the file this run uses
    (:func:`fmspec.integrity.key_path`) and the default one (``~/.config/fmspec``) are covered. A key
    file this run would create when it first signs the results is created now, so that it is covered."""
    from fmspec import integrity

    if not os.environ.get(integrity.KEY_ENV):
        integrity.key(create=True)
    with _without_key_env():
        default = integrity.key_path()
    files = list(dict.fromkeys([integrity.key_path(), default]))
    path = Path(spec.partition("=")[2] or spec) if (spec.endswith(".py") or "/" in spec) else None
    keep = [Path(p).resolve() for p in [*needed, *sys.path, sys.prefix, sys.exec_prefix, os.getcwd()] if p]
    if path is not None:
        keep.append(path.resolve())
    out: list[tuple[str, str]] = []
    for file in files:
        file = Path(os.path.abspath(file))
        folder = file.parent.resolve()
        if folder.is_dir() and folder != Path(folder.anchor) and not any(k.is_relative_to(folder) for k in keep):
            out.append(("dir", str(folder)))
        elif file.is_file():
            out.append(("file", str(file.resolve())))
    return list(dict.fromkeys(out))


def _reference_dir() -> str:
    import importlib.util

    spec = importlib.util.find_spec("fmspec.reference")
    return str(Path(spec.origin).resolve().parent) if spec and spec.origin else ""


# ------------------------------------------------------------------------------------- plugin's side
def load(spec: str, config: Any, forbid: dict[str, list[str]]) -> Any:
    """``--candidate SPEC`` under ``--fmspec-isolate``: a :class:`fmspec.loader.Candidate` whose ``obj`` is
    the proxy of a candidate process (started here, so an import error is known before collection)."""
    import pytest

    from fmspec import loader, trust

    try:
        worker_spec, name, source, version = identity(spec)
    except loader.CandidateError as exc:
        raise pytest.UsageError(str(exc)) from None
    if source.startswith("path ") and not Path(source[5:]).exists():
        raise pytest.UsageError(f"--candidate {spec!r}: path does not exist")
    iso = Isolated(worker_spec, memory_gb=config.getoption("fmspec_memory_limit"),
                   call_timeout=config.getoption("fmspec_call_timeout"), forbid=forbid,
                   check_reference=not trust.is_builtin_candidate(source), writable=_test_temp(config))
    ready = iso.start()
    if ready.get("error"):
        iso.stop()
        if not ready.get("import_error") and ready.get("error", "").startswith("--candidate"):
            raise pytest.UsageError(str(ready["error"]))
        return loader.Candidate(name, source, version, iso.proxy, error=str(ready["error"]))
    if not source.startswith("path "):
        version = str(ready.get("version") or version)
    name = str(ready.get("name") or name)
    flags = [str(f)[:300] for f in ready.get("reference", []) or []][:5]
    if hasattr(config, "workerinput") is False and getattr(config.option, "numprocesses", None):
        iso.stop()  # the xdist controller runs no test: its copy was only for the identity
    return loader.Candidate(name, source, version, iso.proxy, flags=flags)


def _test_temp(config: Any) -> tuple[str, ...]:
    """Where a test's ``tmp_path`` lives (pytest's ``--basetemp``, else the parent of every run's
    basetemp), the one tree the candidate process may write: a test may ask the candidate to save a file
    there. Not when the results file or the working directory is inside it."""
    import getpass

    base = config.option.basetemp
    if base:
        root = Path(base).resolve()
    else:
        try:
            user = getpass.getuser()
        except (ImportError, KeyError, OSError):
            user = "unknown"
        root = Path(tempfile.gettempdir()).resolve() / f"pytest-of-{user}"
    results = Path(config.getoption("fmspec_results") or "fmspec-results.json").expanduser().resolve()
    if results.is_relative_to(root) or Path.cwd().resolve().is_relative_to(root):
        return ()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    return (str(root),)


def controller(cand: Any) -> Isolated | None:
    proxy = getattr(cand, "obj", None) if not isinstance(cand, CandidateProxy) else cand
    if isinstance(proxy, CandidateProxy):
        return object.__getattribute__(proxy, "_iso")
    return None


def begin_test(cand: Any, component: str | None, timeout: float | None) -> None:
    iso = controller(cand)
    if iso is not None:
        iso.begin_test(component, max(timeout, 0.1) if timeout is not None else None)


def end_test(cand: Any) -> tuple[list[str], list[str]]:
    iso = controller(cand)
    return iso.end_test() if iso is not None else ([], [])


def describe(cand: Any) -> str:
    iso = controller(cand)
    if iso is None:
        return "not isolated"
    if not iso.sandboxed:
        return "not sandboxed"
    return iso.note or "sandboxed (read-only mount namespace, no /proc, no capabilities)"


def stop_all(cands: list) -> None:
    for cand in cands:
        iso = controller(cand)
        if iso is not None:
            iso.stop()


# ------------------------------------------------------------------------------------ candidate process
def _worker_main(conn: Any, spec: str, options: dict) -> None:
    """The candidate process: sandbox, limits, import the candidate, serve calls until the pipe closes."""
    from fmspec import integrity

    global _CONTENT_KEYS
    _CONTENT_KEYS = True
    for name in (integrity.KEY_ENV, integrity.KEY_FILE_ENV):  # not inherited (see _without_key_env): in case
        os.environ.pop(name, None)
    note = (sandbox(options["private"], tuple(options.get("writable") or ()), list(options.get("hide") or ()))
            if options.get("sandboxed") else "not sandboxed")
    _die_with_parent()
    if options.get("memory_gb"):
        import resource

        limit = int(options["memory_gb"] * 2**30)
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    import torch

    torch.set_num_threads(1)
    ep = Endpoint(conn, worker=True)
    from fmspec import loader

    ready: dict = {"sandbox": note}
    try:
        cand = loader.load(spec)
        ep.lent[0] = cand.obj
        ready.update(name=str(cand.name)[:200], version=str(cand.version)[:200])
    except loader.CandidateError as exc:
        ready["error"] = str(exc)[:MAX_TEXT]
        ready["import_error"] = isinstance(exc, loader.CandidateImportError)
    except BaseException as exc:  # noqa: BLE001
        ready["error"] = f"importing the candidate raised {type(exc).__name__}: {exc}"[:MAX_TEXT]
    watch = Watch(options.get("forbid") or {}, options.get("reference_dir") or "")
    if "error" not in ready:
        watch.scan()
        ready["reference"], watch.reference = watch.reference + sorted(set(
            f"holds the reference's code ({where})" for where in watch.reference_code.values()))[:5], []
    ep.send(ready)
    _serve_forever(ep, watch)


def _serve_forever(ep: Endpoint, watch: "Watch") -> None:
    import torch

    next_graph = [1]

    def new_graph_id() -> int:
        next_graph[0] += 1
        return next_graph[0] - 1

    def perform(op: str, args: tuple) -> tuple[Any, Any]:
        value, extra = serve_one(op, args)
        # what the candidate did to the shared tensors (Endpoint.shared_changes); after a read, at the next call
        if (ep.mirrors or ep.kept or ep.args or ep.built) and op not in _READS and op != "getattr":
            rebuilt = ep.rebuilt() if ep.built else []
            changes, gone, lists = ep.shared_changes(), ep.forget(), ep.list_changes()
            if changes or gone or rebuilt or lists:
                extra = {**(extra if isinstance(extra, dict) else {}), "shared": changes, "gone": gone,
                         "rebuilt": rebuilt, "lists": lists}
        return value, extra

    def serve_one(op: str, args: tuple) -> tuple[Any, Any]:
        if op == "iter":
            drained = _drained(ep.decode(args[0]))
            if drained is not None:
                return ep.encode(drained), None
        if op == "share":
            ep.apply_shared(args[0])
            ep.drop_mirrors(args[1] if len(args) > 1 else [])
            for aid in args[2] if len(args) > 2 and isinstance(args[2], list) else []:
                ep.args.pop(aid, None)
                ep.agreed.pop(("a", aid), None)
            ep.apply_lists(args[3] if len(args) > 3 else [])
            return None, None
        if op == "begin":
            watch.begin(ep.decode(args[0]))
            return None, None
        if op == "held":
            import gc

            gc.collect(1)  # young cycles only, as mem.held_tensors() does
            alive: dict = {}
            ids = ep.decode(args[0])
            for hid in ids if isinstance(ids, list) else []:
                mode = ep.held.get(hid)
                if mode is not None:
                    for ptr, (ref, n) in mode.storages.items():
                        if ref() is not None and ptr not in mode.outputs:
                            alive[ptr] = n
            return sum(alive.values()), None
        if op == "ship":  # a benchmark's timed call (Shipped): the suite's code, by value
            got: list = []
            ep.shipped[len(ep.shipped) + 1] = _unship(ep, args[0], got)
            return len(ep.shipped), None
        if op == "run":
            sid, phase, grad, threads, rng, env = args
            entry = ep.shipped[sid]
            torch.set_num_threads(threads)
            _set_rng(rng)
            _set_env(env)
            # the profiler hook would slow Python-heavy code several times over: timed rounds are watched
            # only where --fmspec-forbid names functions for this component (the checked run always is)
            forbidding = watch.targets or watch.op_names or watch.target_codes
            with torch.set_grad_enabled(bool(grad)), watch.watching() if forbidding else contextlib.nullcontext():
                if phase == "setup":
                    got_args = entry["setup"]()
                    entry["args"], entry["kwargs"] = got_args if got_args is not None else ((), {})
                else:
                    entry["last"] = None  # the previous round's output is not this round's
                    entry["last"] = entry["target"](*entry["args"], **entry["kwargs"])
                    if any(t.is_cuda for t in _tensors_in(entry["last"])):
                        torch.cuda.synchronize()
            return None, {"rng": _rng_state()}
        if op == "last":
            ep.plain = True
            try:
                return ep.encode(ep.shipped[args[0]]["last"], []), None
            finally:
                ep.plain = False
        if op == "end":
            ep.shipped.clear()
            ep.held.clear()
            ep.graphs.clear()
            ep.built.clear()
            ep.clear_mirrors()
            return watch.end(), None
        if op == "backward":
            return ep.serve_backward(args, new_graph_id)
        if op == "call":
            got: list = []
            target = ep.decode(args[0])
            call_args = ep.decode(args[1], got)
            call_kwargs = ep.decode(args[2], got)
            grad = bool(args[3])
            _set_rng(args[4] if len(args) > 4 else None)
            _set_env(args[6] if len(args) > 6 else None)
            saved = _SavedForBackward()
            held = _held_mode_class()() if len(args) > 5 and args[5] is True else None
            with torch.set_grad_enabled(grad), watch.watching(count=True), saved.recording(grad):
                if held is None:
                    value = target(*call_args, **call_kwargs)
                else:
                    ep.tracking += 1
                    try:
                        with held:
                            value = target(*call_args, **call_kwargs)
                    finally:
                        ep.tracking -= 1
            sent: list = []
            ep.plain = True  # a result's grad is the bridge's business, not a flag on the copy
            try:
                tree = ep.encode(value, sent)
            finally:
                ep.plain = False
            extra: dict = {"mutated": [], "rng": _rng_state()}
            if held is not None:
                held.outputs = {t.untyped_storage().data_ptr() for t in sent if isinstance(t, torch.Tensor)}
                ep.held[next_graph[0]] = held
                extra["held"] = next_graph[0]
                next_graph[0] += 1
            if saved.tensors:
                extra["saved"] = (saved.tensors, saved.sizes)
            for index, arg, version in got:
                if isinstance(arg, torch.Tensor) and arg._version != version:
                    extra["mutated"].append((index, ep.encode(arg.detach())))
                elif isinstance(arg, torch.Generator):
                    extra["mutated"].append((index, ep.encode(arg.get_state())))
            if grad:
                outs = [t for t in sent if isinstance(t, torch.Tensor)]
                diff = [t.requires_grad for t in outs]
                leaves = [(i, a) for i, a, _ in got if isinstance(a, torch.Tensor) and a.requires_grad]
                if any(diff):
                    ep.graphs[next_graph[0]] = ([t if d else None for t, d in zip(outs, diff)], leaves)
                    extra["graph"] = next_graph[0]
                    next_graph[0] += 1
                extra["diff"] = diff
            return tree, extra
        with watch.watching():
            return Endpoint.perform(ep, op, args)

    ep.perform = perform
    while True:
        try:
            msg = ep.recv()
        except (EOFError, OSError):
            os._exit(0)
        ep.serve(msg)


def _run_backward(graphs: dict, gid: Any, grads: Any, keep: bool = True, create: bool = False) -> list:
    """The gradients of a call's inputs (leaves on this side) given its outputs' gradients; the leaves'
    own ``.grad`` (a parameter passed in, a shared tensor) is left as it was. A leaf passed at several
    argument positions (a tensor the other side sent twice, known here as one: ``op(x, x)``) has its
    gradient at the first of them only: the other side adds up what every position gets. With
    ``create``, the backward creates a graph (the gradients are differentiable, as in process).

    A backward that does not retain its graph frees what its nodes saved, as autograd frees the other
    side's, except in a graph marked shared (``(outs, leaves, True)``): one that went through a backward
    that created a graph, and the graph that backward created, which holds nodes of the first (the
    gradient of ``exp``'s input holds ``exp``'s output). In process one backward runs through both at once;
    here they are two, and the first must not free what the second needs. They are freed with their
    entry (a backward that does not retain it, the other side's node going, the test's end)."""
    import warnings

    import torch

    graph = graphs.get(gid) if type(gid) is int else None
    if graph is None:
        raise RuntimeError("backward through a graph that is gone (only within the test that made it, "
                           "and once unless the suite's backward retains its graph)")
    if not keep:
        del graphs[gid]
    outs, indexed, shared = graph[0], graph[1], len(graph) > 2 and graph[2] is True
    leaves = [leaf for _, leaf in indexed]
    grads = grads if isinstance(grads, list) else []
    pairs = [(o, g) for o, g in zip(outs, grads) if o is not None and isinstance(g, torch.Tensor)]
    before = [leaf.grad for leaf in leaves]
    for leaf in leaves:
        leaf.grad = None
    try:
        with torch.enable_grad(), warnings.catch_warnings():
            # the leaves' .grad is put back below (no cycle through them); the other side's own parameters
            # accumulate a differentiable .grad as they would in process
            warnings.filterwarnings("ignore", message="Using backward\\(\\) with create_graph=True")
            if pairs:
                torch.autograd.backward([o for o, _ in pairs], [g.to(o.dtype) for o, g in pairs],
                                        retain_graph=keep or create or shared, create_graph=create)
        seen: set = set()
        out = []
        for i, leaf in indexed:  # by the argument's index: [index, gradient or None]
            out.append([i, None if id(leaf) in seen else leaf.grad])
            seen.add(id(leaf))
        return out
    finally:
        for leaf, g in zip(leaves, before):
            leaf.grad = g


def _input_grads(result: Any, inputs: list, indices: list) -> list:
    """The other side's ``[[index, gradient]]`` as the gradients of ``inputs`` (at those argument indices)."""
    import torch

    by_index = {}
    for item in result if isinstance(result, list) else []:
        if type(item) is list and len(item) == 2 and type(item[0]) is int and isinstance(item[1], torch.Tensor):
            by_index[item[0]] = item[1]
    out = []
    for t, i in zip(inputs, indices):
        g = by_index.get(i)
        out.append(g.to(t.dtype) if g is not None and g.shape == t.shape else None)
    return out


def _drained(obj: Any) -> list | None:
    """Candidate side: the items of a generator of ``nn.Module`` (``named_parameters()``, ``buffers()``,
    ``named_modules()``...) at once, as a list (one answer instead of one a parameter); None for any other
    iterable. The candidate's own overrides of these methods are not drained."""
    import types

    if type(obj) is not types.GeneratorType:
        return None
    if not obj.gi_code.co_filename.replace("\\", "/").endswith("torch/nn/modules/module.py"):
        return None
    return list(obj)  # what is left of it


def _rng_state() -> bytes:
    """torch's global CPU generator's state: sent with every call and brought back after it, so that the
    suite's ``torch.manual_seed`` seeds what the candidate draws (one stream across both processes)."""
    import torch

    return bytes(torch.get_rng_state().numpy().tobytes())


def _set_rng(state: Any) -> None:
    import torch

    if type(state) is bytes and state:
        try:
            torch.set_rng_state(torch.frombuffer(bytearray(state), dtype=torch.uint8))
        except RuntimeError:
            pass  # a state the other side made up: the generator stays as it was


class _SavedForBackward:
    """In the candidate process: what a call saved for the backward (``saved_tensors_hooks``), as
    ``(dtype, shape, stride, offset, storage)`` per tensor and the byte size of each storage, so that the
    suite's bridge saves placeholders of the same shapes (on the meta device) that its own hooks see."""

    LIMIT = 100_000  # saved tensors recorded per call

    def __init__(self):
        self.tensors: list[tuple] = []
        self.sizes: list[int] = []
        self.storages: dict[tuple, int] = {}

    def recording(self, on: bool):
        import contextlib

        import torch

        if not on:
            return contextlib.nullcontext()
        return torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t)

    def pack(self, t: Any) -> Any:
        if len(self.tensors) < self.LIMIT:
            storage = t.untyped_storage()
            key = (t.device.type, storage.data_ptr() or id(storage))
            if key not in self.storages:
                self.storages[key] = len(self.sizes)
                self.sizes.append(int(storage.nbytes()))
            self.tensors.append((str(t.dtype).removeprefix("torch."), list(t.shape), list(t.stride()),
                                 int(t.storage_offset()), self.storages[key]))
        return t


def _placeholders(record: Any) -> list:
    """Suite side: meta tensors standing for what the candidate's call saved for the backward (shapes,
    dtypes and shared storages as there; no memory). Anything malformed is left out."""
    import torch

    try:
        tensors, sizes = record
        storages = [torch.UntypedStorage(int(n), device="meta") for n in sizes[:_SavedForBackward.LIMIT]]
        out = []
        for dtype_name, shape, stride, offset, index in tensors[:_SavedForBackward.LIMIT]:
            dtype = getattr(torch, str(dtype_name), None)
            if isinstance(dtype, torch.dtype) and type(index) is int and 0 <= index < len(storages):
                t = torch.empty(0, dtype=dtype, device="meta")
                out.append(t.set_(storages[index], int(offset), [int(x) for x in shape], [int(x) for x in stride]))
        return out
    except (TypeError, ValueError, RuntimeError):
        return []


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL: the forkserver's end ends its candidate processes
    except (OSError, AttributeError):
        pass


class Watch:
    """In the candidate process: what the candidate executes, for ``--fmspec-forbid`` and the re-export
    check. The profiler hook runs only while a call of a component with a forbidden function is served,
    or when the candidate holds code that is the reference's."""

    def __init__(self, forbid: dict[str, list[str]], reference_dir: str):
        self.forbid = forbid
        self.reference_dir = reference_dir
        self.component: str | None = None
        self.targets: dict[int, str] = {}  # id of a forbidden callable -> its name
        self.op_names: dict[str, str] = {}  # aten op name -> forbidden name
        self.target_codes: dict[Any, str] = {}  # code of a forbidden Python function -> its name
        self.forbidden: set[str] = set()
        self.reference_code: dict[Any, str] = {}  # code objects of the reference held by the candidate
        self.reference: list[str] = []
        self.held = []
        self.watched = 0  # calls of the candidate's functions in this test (see watching)

    def scan(self) -> None:
        """After the import: functions the candidate holds whose code is the reference's (by file, or by
        bytecode: a copy exec'd under another name), and modules whose source is a reference module's."""
        import gc
        import types

        if not self.reference_dir:
            return
        fingerprints, hashes = _reference_fingerprints(self.reference_dir)
        for mod in list(sys.modules.values()):
            file = getattr(mod, "__file__", None) or ""
            if file and not file.startswith(self.reference_dir) and file.endswith(".py"):
                try:
                    digest = hashlib.sha256(Path(file).read_bytes()).hexdigest()
                except OSError:
                    continue
                if digest in hashes:
                    self.reference.append(f"module {mod.__name__} is the source of {hashes[digest]}")
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            functions = [o for o in gc.get_objects() if type(o) is types.FunctionType]
        for obj in functions:
            if True:
                code = obj.__code__
                where = None
                if code.co_filename.startswith(self.reference_dir):
                    where = f"{Path(code.co_filename).name}:{code.co_name}"
                else:
                    where = fingerprints.get(_fingerprint(code))
                if where:
                    self.reference_code[code] = where

    def begin(self, component: str | None) -> None:
        self.component = component
        self.watched = 0
        self.forbidden = set()
        self.targets, self.op_names, self.target_codes = {}, {}, {}
        for dotted in self.forbid.get(component or "", []):
            self._add_target(dotted)

    def _add_target(self, dotted: str) -> None:
        import importlib

        import torch

        module, _, attr = dotted.rpartition(".")
        try:
            obj = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            try:
                obj = importlib.import_module(dotted)
            except ImportError:
                return
        self.targets[id(obj)] = dotted
        self.held.append(obj)
        code = getattr(obj, "__code__", None)
        if code is not None:
            self.target_codes[code] = dotted
        aten = getattr(torch.ops.aten, attr, None) if hasattr(torch.ops, "aten") else None
        if aten is not None:
            self.op_names[attr] = dotted

    def end(self) -> dict:
        out = {"forbidden": sorted(self.forbidden), "reference": list(dict.fromkeys(self.reference))}
        self.reference = []
        self.forbidden = set()
        return out

    def watching(self, count: bool = False):
        """The profiler hook for one call: always where a function is forbidden for the component; for
        the reference's code (a candidate flagged at import for holding it), only until the first
        :data:`REFERENCE_WATCHED_CALLS` calls of each test (``count``: this is one), which is enough to flag
        the test: the hook slows
        Python-heavy code (the Triton interpreter, a training loop) three to five times."""
        import contextlib

        self.watched += 1 if count else 0
        if self.targets or self.op_names or self.target_codes:
            return _Profiling(self)
        if self.reference_code and self.watched <= REFERENCE_WATCHED_CALLS:
            return _Profiling(self)
        return contextlib.nullcontext()

    def event(self, frame: Any, event: str, arg: Any) -> None:
        if event == "c_call":
            name = self.targets.get(id(arg))
            if name is not None:
                self.forbidden.add(name)
        elif event == "call":
            code = frame.f_code
            where = self.reference_code.get(code)
            if where is not None:
                self.reference.append(f"the candidate ran the reference's code ({where})")
            elif self.op_names and code.co_name == "__call__" and "_ops.py" in code.co_filename:
                op = frame.f_locals.get("self")
                name = getattr(op, "_name", "") or getattr(op, "__name__", "")
                short = str(name).split("::")[-1].split(".")[0]
                if short in self.op_names:
                    self.forbidden.add(self.op_names[short])
            else:
                name = self.target_codes.get(code)
                if name is not None:
                    self.forbidden.add(name)


REFERENCE_WATCHED_CALLS = 3


class _Profiling:
    def __init__(self, watch: Watch):
        self.watch = watch

    def __enter__(self):
        import threading

        self.before = sys.getprofile()
        sys.setprofile(self.watch.event)
        threading.setprofile(self.watch.event)
        return self

    def __exit__(self, *exc):
        import threading

        sys.setprofile(self.before)
        threading.setprofile(None)
        return False


_FINGERPRINT_MIN = 48  # bytes of bytecode: shorter functions (return x) are too common to call a copy


def _fingerprint(code: Any) -> str | None:
    if len(code.co_code) < _FINGERPRINT_MIN:
        return None
    consts = tuple(_fingerprint(c) if hasattr(c, "co_code") else repr(c) for c in code.co_consts[1:])
    return hashlib.sha256(code.co_code + repr((code.co_names, consts)).encode()).hexdigest()


def _reference_fingerprints(reference_dir: str) -> tuple[dict[str, str], dict[str, str]]:
    """Bytecode fingerprints of every reference function, and the SHA-256 of every reference file."""
    fingerprints: dict[str, str] = {}
    hashes: dict[str, str] = {}
    for path in sorted(Path(reference_dir).rglob("*.py")):
        source = path.read_bytes()
        hashes[hashlib.sha256(source).hexdigest()] = f"fmspec/reference/{path.relative_to(reference_dir)}"
        try:
            code = compile(source, "<reference>", "exec")
        except SyntaxError:
            continue
        stack = [code]
        while stack:
            c = stack.pop()
            stack += [k for k in c.co_consts if hasattr(k, "co_code")]
            fp = _fingerprint(c)
            if fp and c.co_name != "<module>":
                fingerprints.setdefault(fp, f"{path.name}:{c.co_name}")
    return fingerprints, hashes


# ---------------------------------------------------------------------------------------------- sandbox
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 0x4000, 1 << 18
SYS_MOUNT_SETATTR = 442  # x86_64 and aarch64 (the generic syscall table)
AT_FDCWD, AT_RECURSIVE = -100, 0x8000
MOUNT_ATTR_RDONLY = 1


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def sandbox(private: str, writable: tuple[str, ...] = (), hide: list | tuple = ()) -> str | None:
    """Confine this (single-threaded, just started) process: a new user and mount namespace, every mount
    read-only (``mount_setattr(AT_RECURSIVE, MOUNT_ATTR_RDONLY)``), an empty read-only tmpfs over
    ``/proc`` (no path to another process's root, cwd or open files) and over each ``("dir", path)`` of
    ``hide`` (``/dev/null`` over each ``("file", path)``: the results key, see :func:`_key_hiding`), a
    private writable tmpfs at ``private`` (its ``TMPDIR`` and working directory) and at ``/dev/shm``, then
    every capability dropped, ``no_new_privs``, and a seccomp filter that refuses ``ptrace``,
    ``process_vm_readv/writev``, ``pidfd_getfd`` and signals to other processes (:func:`_seccomp`).
    Returns None, or one line saying why it could not (nothing is half done: the process then runs as it
    started)."""
    if not sys.platform.startswith("linux"):
        return f"no sandbox on {sys.platform}: the candidate process can write what this user can"
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0:
        err = ctypes.get_errno()
        return f"no sandbox: unshare(CLONE_NEWUSER) failed ({os.strerror(err)}): the candidate process can write what this user can"
    try:
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as fh:
                fh.write(text)
        _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
        writable = tuple(d for d in writable if os.path.isdir(d))
        for d in writable:  # a mount of its own, made writable again below
            _mount(libc, d, d, None, MS_BIND | MS_REC)
        _mount_setattr(libc, "/", set_=MOUNT_ATTR_RDONLY)
        for d in writable:
            _mount_setattr(libc, d, clear=MOUNT_ATTR_RDONLY)
        _mount(libc, "tmpfs", private, "tmpfs", MS_NOSUID | MS_NODEV, "size=1g,mode=700")
        if os.path.isdir("/dev/shm"):
            _mount(libc, "tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=1g")
        kept = {}
        for name in ("cpuinfo", "meminfo"):  # what torch and libraries read at run time: copies
            try:
                kept[name] = Path("/proc", name).read_bytes()
            except OSError:
                pass
        _mount(libc, "tmpfs", "/proc", "tmpfs", MS_NOSUID | MS_NODEV, "size=4m")
        for name, data in kept.items():
            Path("/proc", name).write_bytes(data)
        _mount(libc, None, "/proc", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
        for kind, path in hide:
            if kind == "dir":
                _mount(libc, "tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=4k,mode=500")
                _mount(libc, None, path, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
            else:
                _mount(libc, "/dev/null", path, None, MS_BIND)
                _mount(libc, None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
        _drop_capabilities(libc)
        _seccomp(libc)
    except OSError as exc:
        # the namespace is half set up: the process must not run the candidate like this
        os.write(2, f"fmspec: candidate sandbox failed: {exc}\n".encode())
        os._exit(70)
    os.environ["TMPDIR"] = private
    tempfile.tempdir = private
    os.chdir(private)
    return None


def _mount_setattr(libc: Any, path: str, set_: int = 0, clear: int = 0) -> None:
    attr = _MountAttr(set_, clear, 0, 0)
    if libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, path.encode(), AT_RECURSIVE, ctypes.byref(attr), ctypes.sizeof(attr)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount_setattr({path}): {os.strerror(err)}")


def _mount(libc: Any, source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    if libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def _drop_capabilities(libc: Any) -> None:
    """No capability left in the namespace (so no remounting read-write, no unmounting the /proc cover),
    and none to gain again (``PR_SET_NO_NEW_PRIVS``)."""

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    for cap in range(64):  # the bounding set: nothing to regain through exec
        libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP (EINVAL past the last capability: ignored)
    header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (Data * 2)()  # all zero
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


# audit arch -> {syscall: None (refused) or the argument index that must be this process's pid}
_SYSCALLS = {
    0xC000003E: {101: None, 310: None, 311: None, 438: None, 424: None, 200: None, 62: 0, 234: 0},  # x86_64
    0xC00000B7: {117: None, 270: None, 271: None, 438: None, 424: None, 130: None, 129: 0, 131: 0},  # aarch64
}


def _seccomp(libc: Any) -> None:
    """A seccomp filter (after ``no_new_privs``): ``ptrace``, ``process_vm_readv``, ``process_vm_writev``,
    ``pidfd_getfd``, ``pidfd_send_signal`` and ``tkill`` fail with EPERM, and ``kill`` / ``tgkill`` only
    reach this process, so the candidate process can neither read nor write the pytest process's memory
    (its key, its oracles) nor signal it. Other architectures: no filter (docs/trust.md says so)."""
    import platform

    arch = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}.get(platform.machine())
    if arch is None:
        return
    LD_W_ABS, JEQ_K, RET_K = 0x20, 0x15, 0x06
    ALLOW, EPERM = 0x7FFF0000, 0x00050000 | 1
    prog = [(LD_W_ABS, 0, 0, 4), (JEQ_K, 1, 0, arch), (RET_K, 0, 0, ALLOW), (LD_W_ABS, 0, 0, 0)]
    pid = os.getpid()
    for nr, arg in _SYSCALLS[arch].items():
        if arg is None:
            prog += [(JEQ_K, 0, 1, nr), (RET_K, 0, 0, EPERM)]
        else:  # allowed only when the argument (its low 32 bits: struct seccomp_data.args) is our pid
            prog += [(JEQ_K, 0, 4, nr), (LD_W_ABS, 0, 0, 16 + 8 * arg), (JEQ_K, 0, 1, pid),
                     (RET_K, 0, 0, ALLOW), (RET_K, 0, 0, EPERM)]
    prog.append((RET_K, 0, 0, ALLOW))
    filters = (_SockFilter * len(prog))(*[_SockFilter(*ins) for ins in prog])
    fprog = _SockFprog(len(prog), filters)
    if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


def writable_probe(path: str) -> bool:
    """Can this process open ``path`` for appending (used by the tests of the sandbox)?"""
    try:
        with open(path, "a"):
            return True
    except OSError:
        return False


__all__ = ["Isolated", "Handle", "CandidateProcessError", "RemoteTraceback", "identity", "sandbox", "context"]
