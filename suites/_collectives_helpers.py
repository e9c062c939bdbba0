"""collectives: the process group the suite starts, the communicator it hands the candidate, the oracle.

The suite's own process (the *parent*: pytest, hypothesis, the oracle, the assertions) never runs the
candidate's collectives; it draws the inputs, sends each rank its share and judges what comes back::

    parent ─ socketpair ─ rank 0 ─┐
           ─ socketpair ─ rank 1 ─┤  torch.distributed, gloo over 127.0.0.1 (nccl where there is a CUDA
           ─ socketpair ─ rank 2 ─┤  device for every rank); worlds of 1, 2 and 3 ranks are the subgroups
           ─ socketpair ─ rank 3 ─┘  {0}, {0, 1}, {0, 1, 2} of one pool of pool_size() workers

- **Backend and size** (:func:`pool_size`, :func:`pool_backend`): ``FMSPEC_COLLECTIVES_WORLD`` workers
  (default 4); ``FMSPEC_COLLECTIVES_BACKEND=gloo|nccl``, or else nccl where there is a CUDA device for
  every rank (:func:`choose_backend`) and gloo otherwise. A call on more ranks than the pool has is not
  run (:func:`need_ranks`): the test is skipped, or the hypothesis example rejected, with the reason.
  With nccl, rank r works on ``cuda:r``: the parent sends CPU tensors, the worker moves them to its device
  before the candidate sees them and sends the results back on the CPU; NCCL's communicators (one per
  subgroup and one per pair of ranks, made at first use) are all made while the pool starts; NVLink
  multicast is off (``NCCL_NVLS_ENABLE=0``). NCCL ignores message tags, so a message a failed call left
  behind may reach a later call: such a call fails or hangs, and the fault restarts the pool. Timeouts
  are ``NCCL_SLACK`` times longer (a kernel's first launch, a cuBLAS handle).

- **Start** (:class:`Pool`, :class:`Zygote`): the parent hosts the TCPStore, as torchrun's agent does.
  The workers are forked from a *zygote*: one fresh python (``subprocess``, not a fork of the parent:
  it inherits no open file or socket, no hypothesis or results-writer state) started with the workers'
  environment (:func:`worker_environment`: the parent's, less the rank variables and the results key's
  ``FMSPEC_RESULTS_KEY`` / ``FMSPEC_KEY_FILE``), which imports torch, this module and :data:`PRELOAD` once
  and then forks one worker per request: the parent passes it the worker's end of a socketpair
  (SCM_RIGHTS) and the rank's part of torchrun's environment (MASTER_PORT, RANK, WORLD_SIZE,
  LOCAL_RANK, beside MASTER_ADDR=127.0.0.1 and TORCHELASTIC_USE_AGENT_STORE). A worker leads its own
  process group, writes its output to its log, and calls ``init_process_group(init_method="env://")``
  and makes the subgroups: a pool of 4 costs the zygote's imports (about 2 s of CPU, torch._dynamo
  included) instead of 4 pythons importing torch (and torch._dynamo at a ShardedOptimizer test's first
  step), about 9 s. The zygote reaps the workers and reports their exit status; it lives as long as the
  pool, so a restart after a fault forks 4 workers again in tens of milliseconds; when the parent exits
  or closes the pool, it kills and reaps its workers and exits. Gloo is bound to the loopback
  interface: no traffic leaves it. With nccl the zygote imports only torch, this module and
  fmspec.loader, none of which touches CUDA: each worker initializes CUDA itself, after the fork, on
  its own device (a process that has initialized CUDA cannot fork children that use it).
- **Isolation**: under ``--fmspec-isolate`` (the candidate is a candidate process's proxy) every worker
  sandboxes itself before it loads the candidate, as the candidate process does
  (:func:`fmspec.isolate.sandbox`: read-only mounts, no ``/proc``, a private ``TMPDIR``, the results
  key's file or folder covered, no capabilities, no tracing or signalling other processes); only its
  log, its step file and its socket, opened before, stay writable. In process, the workers are not
  sandboxed (the candidate runs in the parent too), but they never see the key's variables either.
- **A call** (:meth:`Pool.run`): the parent sends a task to ranks 0..N-1 (the candidate's spec, the
  function, each rank's tensor); each worker loads the candidate (``loader.load(spec)``, once per spec),
  hands it a :class:`Communicator` over the world's group, and sends back the result, the candidate's
  exception, and the bytes it sent. The communicator notes each message as the rank's last step, in a
  small file per rank that the parent reads only after a fault (no traffic while all is well).
- **Faults**: a rank that has not answered after ``CALL_TIMEOUT`` seconds (a deadlock: a message never
  sent), or that died, stops the pool: every worker is killed and reaped, and the test fails with a
  :class:`CollectiveFault` naming the rank and its last step (its last message), or its exit status. The
  fault is a BaseException so that hypothesis does not shrink it (each attempt would wait out the
  timeout again); the next test's setup forks fresh workers from the zygote (a fresh zygote too, if it
  died).
- **Reuse**: one pool (and one zygote) per pytest process (:func:`shared_pool`), for the session:
  hypothesis's examples, the test and bench modules and the candidates of a run (``--candidate a
  --candidate b``, the mutants) share it; each worker loads each candidate once. Each call uses a fresh
  message tag, so a message a failed call left behind is never received by a later one.

The zygote and the workers import this module only for :func:`zygote_main` and what it runs; hypothesis
never loads there, and no candidate code runs in the zygote. The DDP model (:class:`Net`) and its
single-process oracle are shared by both sides.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import io
import math
import mmap
import os
import pickle
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import weakref
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Sequence

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from fmspec.suites import asserts as ah

POOL_SIZE = 4  # the largest world, unless FMSPEC_COLLECTIVES_WORLD says otherwise; smaller ones are its subgroups
WORLD_ENV, BACKEND_ENV = "FMSPEC_COLLECTIVES_WORLD", "FMSPEC_COLLECTIVES_BACKEND"
BACKENDS = ("gloo", "nccl")
NCCL_SLACK = 2.0  # nccl: every timeout this many times longer
CALL_TIMEOUT = 15.0  # seconds every rank of one call may take, before the suite calls it a hang
START_TIMEOUT = 120.0  # starting the workers (importing torch on a loaded machine)
PG_TIMEOUT = 60.0  # torch.distributed's own timeout in the workers (the parent stops a hang long before)
STEP_BYTES = 1024  # each worker's last step, in a file the parent reads after a fault
META_LIMIT = 512  # bytes, pickled, of one all_gather_object (metadata, not payload)
OPS = ("sum", "mean", "max", "min")
ZYGOTE_CMD = "from fmspec.suites._collectives_helpers import zygote_main; zygote_main()"
# what the zygote imports beyond torch and this module, once for every worker: torch.optim's first step
# imports torch._dynamo (about a second of CPU in each worker of a ShardedOptimizer test); for nccl
# nothing more, so that the zygote surely never initializes CUDA (a process that has cannot fork workers
# that use it)
PRELOAD = {"gloo": ("fmspec.loader", "torch._dynamo"), "nccl": ("fmspec.loader",)}


class CollectiveFault(BaseException):
    """A rank hung, died or broke the harness: the pool is stopped and the test fails with this message.

    A BaseException, not an Exception: hypothesis re-raises it at once instead of shrinking (every further
    example would hang as long again), and pytest reports it as the test's failure."""


# ------------------------------------------------------------------------------------------ the parent
def candidate_spec(candidate) -> str:
    """The ``--candidate`` text that loads ``candidate`` again in a worker, recovered from ``Candidate.source``
    ("path /x/y.py", "entry point name = target", "module pkg.mod:attr")."""
    source = candidate.source
    if source.startswith("path "):
        return source[len("path "):]
    if source.startswith("entry point "):
        return source[len("entry point "):].split(" = ", 1)[0]
    if source.startswith("module "):
        return source[len("module "):]
    raise ValueError(f"cannot tell how candidate {candidate.name!r} was loaded ({source!r})")


def choose_backend(world_size: int) -> str:
    """nccl where there is a CUDA device for every rank, gloo otherwise."""
    if torch.cuda.is_available() and torch.cuda.device_count() >= world_size:
        return "nccl"
    return "gloo"


def pool_size() -> int:
    """The pool's number of workers: ``FMSPEC_COLLECTIVES_WORLD`` (an int >= 1), else POOL_SIZE."""
    raw = os.environ.get(WORLD_ENV, "").strip()
    if not raw:
        return POOL_SIZE
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{WORLD_ENV} must be an int >= 1, got {raw!r}")
    return int(raw)


def pool_backend(size: int) -> str:
    """``FMSPEC_COLLECTIVES_BACKEND`` (gloo or nccl), else :func:`choose_backend` for ``size`` ranks."""
    raw = os.environ.get(BACKEND_ENV, "").strip().lower()
    if not raw:
        return choose_backend(size)
    if raw not in BACKENDS:
        raise ValueError(f"{BACKEND_ENV} must be one of {', '.join(BACKENDS)}, got {raw!r}")
    return raw


def loopback_interface() -> str:
    """The loopback interface's name ("lo" on Linux, "lo0" on macOS), for gloo and nccl's sockets."""
    for _, name in socket.if_nameindex():
        if name.startswith("lo"):
            return name
    return "lo"


_LIVE: "weakref.WeakSet[Pool]" = weakref.WeakSet()


@atexit.register
def _kill_all() -> None:
    for pool in list(_LIVE):
        pool.kill("the parent process is exiting")
        pool.zygote.stop()


def worker_environment() -> dict[str, str]:
    """What every worker's environment starts from: this process's, less the rank variables (each worker
    gets its own) and the results key's variables (:mod:`fmspec.integrity`: no candidate code may read
    the key), plus the variables the same for every rank: torchrun's and loopback-only sockets."""
    from fmspec import integrity

    drop = {"RANK", "LOCAL_RANK", "GROUP_RANK", "ROLE_RANK", integrity.KEY_ENV, integrity.KEY_FILE_ENV}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(MASTER_ADDR="127.0.0.1", TORCHELASTIC_USE_AGENT_STORE="True", TORCHELASTIC_RESTART_COUNT="0",
               GLOO_SOCKET_IFNAME=loopback_interface(), NCCL_SOCKET_IFNAME=loopback_interface(),
               NCCL_NVLS_ENABLE="0", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


class Zygote:
    """The process the workers are forked from: a fresh python started with :func:`worker_environment`
    (nothing of this process: no open file, socket or module state) that imports torch, this module and
    ``preload`` once, then forks one worker per request, reaps each worker and reports its exit status.
    It lives as long as its pool (a fault restarts the workers, not the zygote)."""

    def __init__(self, preload: Sequence[str] = ()):
        self.preload = tuple(preload)
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None  # the worker's end of its socketpair goes through it (SCM_RIGHTS)
        self.conn: Connection | None = None  # the same socket: pickled messages both ways
        self.tmp: str | None = None
        self.exited: dict[int, int] = {}  # worker pid -> exit status (negative: killed by that signal)
        self.forked: list = []

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and self.conn is not None

    def start(self) -> None:
        self.stop()
        self.tmp = tempfile.mkdtemp(prefix="fmspec-collectives-zygote-")
        mine, theirs = socket.socketpair()
        with open(Path(self.tmp) / "zygote.log", "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", ZYGOTE_CMD, str(theirs.fileno())], env=worker_environment(),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, pass_fds=(theirs.fileno(),),
                start_new_session=True)
        theirs.close()
        self.sock, self.conn = mine, Connection(os.dup(mine.fileno()))
        self.conn.send_bytes(pickle.dumps({"preload": self.preload}))

    def fork(self, conn_fd: int, request: dict, timeout: float) -> int:
        """A new worker (its pid) running ``request`` (see :func:`_worker_process`), talking to this process
        over ``conn_fd``'s socket, which the zygote receives, hands to the worker and closes."""
        self.forked = []
        try:
            if not self.alive:
                raise OSError("it exited")
            socket.send_fds(self.sock, [b"f"], [conn_fd])
            self.conn.send_bytes(pickle.dumps(request))
        except OSError as exc:
            raise RuntimeError(f"the zygote is gone ({exc}){self.output()}") from None
        if not self.drain(timeout, until=lambda: bool(self.forked)):
            raise RuntimeError(f"the zygote did not fork a worker within {timeout:g} s{self.output()}")
        kind, value = self.forked[0]
        if kind != "forked":
            raise RuntimeError(f"the zygote could not fork a worker:\n{value}")
        return value

    def drain(self, timeout: float = 0.0, until=None) -> bool:
        """Read the zygote's messages (forked, exited) for up to ``timeout`` seconds, or until ``until()``."""
        deadline = time.monotonic() + timeout
        while not (until is not None and until()):
            if self.conn is None:
                return False
            try:
                if not self.conn.poll(max(0.0, deadline - time.monotonic())):
                    return False
                message = pickle.loads(self.conn.recv_bytes())
            except (EOFError, OSError):
                self._close_socket()  # the zygote died: its workers follow it (_exit_with_parent)
                return False
            if message[0] == "exited":
                self.exited[message[1]] = message[2]
            elif message[0] in ("forked", "fork failed"):
                self.forked.append(message)
        return True

    def status(self, pid: int, timeout: float = 5.0) -> str:
        """A worker's exit status, once the zygote reaped it."""
        self.drain(timeout, until=lambda: pid in self.exited)
        return str(self.exited[pid]) if pid in self.exited else "unknown"

    def output(self, chars: int = 1500) -> str:
        try:
            text = (Path(self.tmp) / "zygote.log").read_text(errors="replace").strip() if self.tmp else ""
        except OSError:
            text = ""
        return f"\n--- zygote output (last {chars} characters) ---\n{text[-chars:]}" if text else ""

    def _close_socket(self) -> None:
        for end in (self.conn, self.sock):
            with contextlib.suppress(OSError):
                if end is not None:
                    end.close()
        self.conn = self.sock = None

    def stop(self) -> None:
        """Close the socket (the zygote kills and reaps its workers, then exits); kill it after 5 s."""
        self._close_socket()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp = None
        self.exited, self.forked = {}, []


class Pool:
    """``size`` worker processes in one torch.distributed process group (``backend``), reused across calls,
    forked from the pool's :class:`Zygote`."""

    def __init__(self, size: int = POOL_SIZE, backend: str = "gloo"):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        self.size, self.backend = size, backend
        self.slack = NCCL_SLACK if backend == "nccl" else 1.0  # every timeout of a call is multiplied by it
        self.zygote = Zygote(PRELOAD[backend])
        self.pids: list[int] = []
        self.conns: list[Connection] = []
        self.logs: list[Path] = []
        self.store = None
        self.tmp: str | None = None
        self.sandbox: tuple | None = None  # what the workers' sandbox hides (:func:`sandbox_for`), None: none
        self.note: str | None = None  # why a worker could not sandbox itself (one line), or None
        self.down = "not started"

    @property
    def alive(self) -> bool:
        if not self.pids or not self.zygote.alive:
            return False
        self.zygote.drain()
        return not any(pid in self.zygote.exited for pid in self.pids)

    def ensure_started(self, sandbox: tuple | None = None) -> None:
        """Start the workers unless they are running, sandboxed as ``sandbox`` says (call it in a fixture's
        setup, not in a test: the harness kills processes a test's own call leaves running)."""
        if self.alive and sandbox != self.sandbox:
            self.kill("restarted with another sandbox")
        if not self.alive:
            self.kill(self.down)
            self.start(sandbox)

    def start(self, sandbox: tuple | None = None) -> None:
        if self.backend == "nccl" and torch.cuda.device_count() < self.size:
            raise RuntimeError(f"collectives: nccl needs a CUDA device for each of the {self.size} ranks, this machine "
                               f"has {torch.cuda.device_count()} (set {WORLD_ENV}, or {BACKEND_ENV}=gloo)")
        if not self.zygote.alive:
            self.zygote.start()
        self.store = dist.TCPStore("127.0.0.1", 0, None, True, timedelta(seconds=START_TIMEOUT), wait_for_workers=False)
        self.tmp = tempfile.mkdtemp(prefix="fmspec-collectives-")
        self.sandbox, self.note = sandbox, None
        private = None
        if sandbox is not None:
            private = str(Path(self.tmp) / "private")  # each worker's own tmpfs is mounted there
            os.mkdir(private)
        env = {"MASTER_PORT": str(self.store.port), "WORLD_SIZE": str(self.size), "LOCAL_WORLD_SIZE": str(self.size)}
        _LIVE.add(self)
        for rank in range(self.size):
            mine, theirs = socket.socketpair()
            log, step_file = Path(self.tmp) / f"rank{rank}.log", Path(self.tmp) / f"rank{rank}.step"
            step_file.write_bytes(bytes(STEP_BYTES))
            request = {"env": {**env, "RANK": str(rank), "LOCAL_RANK": str(rank)}, "log": str(log),
                       "steps": str(step_file), "backend": self.backend, "sys_path": list(sys.path),
                       "sandbox": None if sandbox is None else {"private": private, "hide": list(sandbox)}}
            self.conns.append(Connection(mine.detach()))
            self.logs.append(log)
            try:
                self.pids.append(self.zygote.fork(theirs.fileno(), request, START_TIMEOUT * self.slack))
            except RuntimeError as exc:
                self.zygote.stop()  # the next start begins with a fresh one
                self._fail_start(str(exc))
            finally:
                theirs.close()
        deadline = time.monotonic() + START_TIMEOUT * self.slack
        waiting = dict(enumerate(self.conns))
        while waiting:
            ready = wait(list(waiting.values()), timeout=max(0.0, deadline - time.monotonic()))
            if not ready:
                self._fail_start(f"ranks {sorted(waiting)} not ready after {START_TIMEOUT * self.slack:g} s")
            for conn in ready:
                rank = self.conns.index(conn)
                try:
                    kind, info = pickle.loads(conn.recv_bytes())
                except (EOFError, OSError):
                    self._fail_start(f"rank {rank} exited while starting (status {self.exit_status(rank)})")
                if kind != "ready":
                    self._fail_start(f"rank {rank} sent {kind!r} while starting")
                self.note = info.get("sandbox") or self.note
                del waiting[rank]
        self.down = ""

    def exit_status(self, rank: int) -> str:
        return self.zygote.status(self.pids[rank]) if rank < len(self.pids) else "unknown"

    def _fail_start(self, why: str) -> None:
        logs = self.tails()
        self.kill(why)
        raise RuntimeError(f"collectives: the worker processes did not start ({self.backend}): {why}\n{logs}")

    def tails(self, ranks: Sequence[int] | None = None, chars: int = 1500) -> str:
        """The end of each worker's output (stdout and stderr), for failure messages."""
        out = []
        for rank in ranks if ranks is not None else range(len(self.logs)):
            try:
                text = self.logs[rank].read_text(errors="replace").strip()
            except OSError:
                continue
            if text:
                out.append(f"--- rank {rank} output (last {chars} characters) ---\n{text[-chars:]}")
        return "\n".join(out)

    def run(self, task: str, per_rank: Sequence[dict], *, what: str, timeout: float = CALL_TIMEOUT) -> list[dict]:
        """Run ``task`` on ranks 0..len(per_rank)-1 (rank r with ``per_rank[r]``); every rank's result."""
        __tracebackhide__ = True
        world = len(per_rank)
        if not 1 <= world <= self.size:
            raise ValueError(f"world size {world} outside 1..{self.size}")
        if not self.alive:
            raise CollectiveFault(f"the worker processes are down ({self.down or 'a worker exited'}) [{what}]")
        try:
            for rank in range(world):
                self.conns[rank].send_bytes(pickle.dumps(("task", task, world, per_rank[rank])))
            return self._collect(world, what, timeout * self.slack)
        except BaseException as exc:
            if not isinstance(exc, CollectiveFault):  # interrupted (pytest-timeout, ^C): the ranks are mid-call
                self.kill(f"interrupted by {type(exc).__name__}")
            raise

    def _collect(self, world: int, what: str, timeout: float) -> list[dict]:
        __tracebackhide__ = True
        deadline = time.monotonic() + timeout
        results: dict[int, dict] = {}
        waiting = {rank: self.conns[rank] for rank in range(world)}
        while waiting:
            ready = wait(list(waiting.values()), timeout=max(0.0, deadline - time.monotonic()))
            if not ready:
                self._fault(world, what, results, sorted(waiting),
                            f"did not finish within {timeout:g} s (a deadlock: waiting for a message no rank sends?)")
            for conn in ready:
                rank = self.conns.index(conn)
                try:
                    kind, payload = pickle.loads(conn.recv_bytes())
                except (EOFError, OSError):
                    kind, payload = "died", None
                if kind == "died":
                    self._fault(world, what, results, [rank],
                                f"exited (status {self.exit_status(rank)}) in the middle of the call")
                if kind == "fault":
                    self._fault(world, what, results, [rank], f"broke the harness:\n{payload}")
                results[rank] = payload
                del waiting[rank]
        return [results[rank] for rank in range(world)]

    def last_step(self, rank: int) -> str:
        """What the rank was last doing (its worker writes it into a small shared file at every message)."""
        try:
            raw = (Path(self.tmp) / f"rank{rank}.step").read_bytes()
        except (OSError, TypeError):
            return "unknown"
        n = int.from_bytes(raw[:2], "little")
        return raw[2:2 + n].decode("utf-8", "replace") or "none (it never started the call)"

    def _fault(self, world: int, what: str, results: dict, ranks: list[int], how: str) -> None:
        __tracebackhide__ = True
        who = f"rank {ranks[0]}" if len(ranks) == 1 else f"ranks {', '.join(map(str, ranks))}"
        last = "; ".join(f"rank {r}'s last step: {self.last_step(r)}" for r in ranks)
        lines = [f"{who} of {world} {how}; {last}"]
        for rank, res in sorted(results.items()):
            err = res.get("error")
            lines.append(f"rank {rank} raised {err['type']}: {err['message']}" if err else f"rank {rank} finished")
        time.sleep(0.2)  # let a dying rank's last words reach its log
        logs = self.tails(ranks)
        self.kill(f"stopped after: {who} {how.splitlines()[0]}")
        raise CollectiveFault("; ".join(lines) + f" [{what}]" + (f"\n{logs}" if logs else ""))

    def close(self) -> None:
        """Ask the workers to exit, kill whatever is left, stop the zygote; reap everything."""
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send_bytes(pickle.dumps(("exit",)))
        pids = list(self.pids)
        self.zygote.drain(5.0, until=lambda: all(pid in self.zygote.exited for pid in pids))
        self.kill("closed")
        self.zygote.stop()
        _LIVE.discard(self)

    def kill(self, why: str) -> None:
        """Kill every worker (and anything it started: each leads its own process group) and wait until the
        zygote has reaped it; the zygote stays, for the next start."""
        # only the zygote's children it has not reaped: a reaped pid may be another process's by now (with
        # the zygote gone, its workers exit by themselves: _exit_with_parent)
        running = list(self.pids) if self.zygote.alive else []
        self.zygote.drain()
        running = [pid for pid in running if pid not in self.zygote.exited]
        for pid in running:
            for kill in (os.killpg, os.kill):  # os.kill: a worker killed before it made its process group
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    kill(pid, signal.SIGKILL)
        self.zygote.drain(10.0, until=lambda: all(pid in self.zygote.exited for pid in running))
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.close()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.pids, self.conns, self.logs, self.store, self.tmp = [], [], [], None, None
        self.down = why


def sandbox_for(candidate, spec: str) -> tuple | None:
    """Under ``--fmspec-isolate`` (the candidate is a candidate process's proxy, sandboxed): what the workers'
    sandbox hides, as the candidate process's does (the results key's file or folder); None in process."""
    isolate = sys.modules.get("fmspec.isolate")  # imported by the plugin when it isolates, else not needed
    iso = isolate.controller(candidate) if isolate is not None else None
    if iso is None or not iso.sandboxed:
        return None
    return tuple(tuple(h) for h in isolate._key_hiding(spec, [tempfile.gettempdir()]))


_SHARED: dict[tuple[str, int], Pool] = {}


def shared_pool(backend: str | None = None, size: int | None = None) -> Pool:
    """This process's pool of ``size`` workers (:func:`pool_size`) on ``backend`` (:func:`pool_backend`),
    shared by the test and bench modules and by every candidate of the run (not started here: see
    :meth:`Pool.ensure_started`)."""
    size = pool_size() if size is None else size
    backend = pool_backend(size) if backend is None else backend
    if (backend, size) not in _SHARED:
        _SHARED[backend, size] = Pool(size, backend)
    return _SHARED[backend, size]


def need_ranks(pool: Pool, world: int) -> None:
    """A call on ``world`` ranks needs a pool of as many workers. Where it has fewer: inside a hypothesis
    test the example is rejected (an explicit ``@example`` too: hypothesis allows it), else the test is
    skipped, with the reason."""
    __tracebackhide__ = True
    if world <= pool.size:
        return
    from hypothesis import control, reject  # the parent's only (never imported by a worker)

    if control.currently_in_test_context():
        reject()
    pytest.skip(f"needs {world} ranks; the pool has {pool.size} ({WORLD_ENV}={pool.size}, {pool.backend})")


def worlds_upto(*choices: int):
    """A hypothesis strategy: one of ``choices`` (world sizes) that fits the pool (:func:`pool_size`, read
    when the test first draws, not at import); none fits: the test is skipped, with the reason."""
    from hypothesis import strategies as st

    def fitting():
        size = pool_size()
        fit = [w for w in choices if w <= size]
        if not fit:
            pytest.skip(f"needs {min(choices)} ranks or more; the pool has {size} ({WORLD_ENV}={size})")
        return st.sampled_from(fit)

    return st.deferred(fitting)


class Ranks:
    """What a test holds: the pool and the candidate the workers must load.

    ``ranks.collective("all_reduce", xs, op="sum")`` runs the candidate's ``collectives.all_reduce`` on
    ``len(xs)`` ranks, rank r with ``xs[r]``; one dict per rank: ``out`` (or ``error``), ``torch`` (the
    same collective by torch.distributed, when ``oracle``), ``input_after`` (the rank's input after the
    call), ``bytes_sent``, ``messages_sent``, ``sent`` (every message's payload, when ``trace``)."""

    def __init__(self, pool: Pool, spec: str):
        self.pool, self.spec = pool, spec

    def __repr__(self) -> str:  # shown in hypothesis's falsifying examples: keep it short
        return f"<ranks running {self.spec}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def collective(self, fn: str, xs: Sequence[Any], *, what: str, oracle: bool = False, trace: bool = False,
                   timeout: float = CALL_TIMEOUT, per_rank: Sequence[dict] | None = None, **kwargs) -> list[dict]:
        """``fn(comm, xs[r], **kwargs)`` on every rank r (``**per_rank[r]`` instead, where given)."""
        __tracebackhide__ = True
        need_ranks(self.pool, len(xs))
        rows = [{"spec": self.spec, "fn": fn, "tensor": x, "kwargs": per_rank[r] if per_rank else kwargs,
                 "oracle": oracle, "trace": trace} for r, x in enumerate(xs)]
        return self.pool.run("collective", rows, what=what, timeout=timeout)

    def ddp(self, states: Sequence[dict], batches: Sequence[list], *, what: str, timeout: float = CALL_TIMEOUT,
            **kwargs) -> list[dict]:
        """Train with the candidate's DDP on ``len(states)`` ranks, rank r from ``states[r]`` on ``batches[r]``
        (see ``_task_ddp``)."""
        __tracebackhide__ = True
        need_ranks(self.pool, len(states))
        per_rank = [{"spec": self.spec, "state": s, "batches": b, **kwargs} for s, b in zip(states, batches)]
        return self.pool.run("ddp", per_rank, what=what, timeout=timeout)


def raise_candidate_errors(results: Sequence[dict], what: str) -> None:
    """A rank's NotImplementedError makes the test missing; any other exception of the candidate fails it."""
    __tracebackhide__ = True
    errors = [(r, res["error"]) for r, res in enumerate(results) if res.get("error")]
    for _, err in errors:
        if err["type"] == "NotImplementedError":
            raise NotImplementedError(err["message"])
    if errors:
        rank, err = errors[0]
        others = f" (and ranks {', '.join(str(r) for r, _ in errors[1:])})" if len(errors) > 1 else ""
        raise AssertionError(f"rank {rank}{others} raised {err['type']}: {err['message']} [{what}]\n{err['traceback']}")


# ------------------------------------------------------------------------------------------ the oracle
def reduce_oracle(xs: Sequence[torch.Tensor], op: str) -> torch.Tensor:
    """``op`` over the ranks' tensors, elementwise: in float64 for floating inputs (the values the ranks
    hold, widened), exactly in int64 for integers."""
    wide = torch.stack([x.to(torch.float64 if x.is_floating_point() else torch.int64) for x in xs])  # (N, *shape)
    if op == "sum":
        return wide.sum(0)
    if op == "mean":
        return wide.sum(0) / len(xs)
    return wide.amax(0) if op == "max" else wide.amin(0)


def terms_scale(xs: Sequence[torch.Tensor]) -> float:
    """The largest sum of absolute terms behind one element of a sum over ranks (``assert_close(scale=)``:
    the sum may cancel far below its terms)."""
    total = torch.stack([x.to(torch.float64).abs() for x in xs]).sum(0)
    return total.max().item() if total.numel() else 0.0


def ring_bytes(numel: int, world: int, itemsize: int) -> tuple[int, int]:
    """Bandwidth bounds of an all-reduce of ``numel`` elements: (at most per rank, at least over all ranks)
    = (2(N-1)·ceil(S/N), 2(N-1)·S) elements, in bytes. The ring meets both: every chunk travels N-1 hops
    in each phase; a rank's N-1 chunks per phase are at most ceil(S/N) elements each."""
    return 2 * (world - 1) * math.ceil(numel / world) * itemsize, 2 * (world - 1) * numel * itemsize


# ------------------------------------------------------------------- the suite's side: calls and checks
# (the parent's only: hypothesis and the strategies module are imported inside, never in a worker)
def inputs(world: int, shape: tuple[int, ...], dtype: torch.dtype, seed: int) -> list[torch.Tensor]:
    """Rank r's tensor: N(0, 1) entries drawn from ``seed + r`` (integers in [-50, 50))."""
    from fmspec.suites import strategies as ss

    if dtype.is_floating_point:
        return [ss.randn(shape, seed + r, dtype) for r in range(world)]
    return [torch.randint(-50, 50, shape, generator=torch.Generator().manual_seed(seed + r), dtype=dtype)
            for r in range(world)]


class _Comm:
    def __repr__(self) -> str:
        return "comm"


def where(fn: str, xs: list[torch.Tensor], seed: int | None = None, **kwargs) -> str:
    """``collectives.all_reduce(comm, tensor(shape=(4,), dtype=float32), op='sum') on 3 ranks, inputs from seed 5``."""
    seeded = f", inputs from seed {seed}" if seed is not None else ""
    return f"{ah.snippet(fn, _Comm(), xs[0], **kwargs)} on {len(xs)} ranks{seeded}"


def results(ranks, fn: str, xs: list, what: str, **kwargs) -> list[dict]:
    """Every rank's result; a candidate's exception fails the test (NotImplementedError: missing); an input
    changed in place fails it too."""
    __tracebackhide__ = True
    res = ranks.collective(fn.rpartition(".")[2], xs, what=what, **kwargs)
    raise_candidate_errors(res, what)
    for rank, (r, x) in enumerate(zip(res, xs)):
        ah.assert_equal(r["input_after"], x, name=f"rank {rank}'s input after the call (inputs are never modified)",
                        where=what)
    return res


def check_reduction(out, expected: torch.Tensor, xs: list[torch.Tensor], op: str, baseline=None, *, name: str,
                    where: str) -> None:
    """``out`` equals the reduction: exactly for integers, max and min (no rounding involved); within the
    dtype's tolerance of the float64 oracle for sum and mean, relative to the terms' scale (a sum over
    ranks may cancel) and at most twice torch.distributed's own error in the same dtype."""
    __tracebackhide__ = True
    dtype = xs[0].dtype
    ah.assert_tensor(out, tuple(expected.shape), dtype, name=name, where=where)
    if not dtype.is_floating_point or op in ("max", "min"):
        ah.assert_equal(out, expected.to(dtype), name=name, where=where)
        return
    scale = terms_scale(xs) / (len(xs) if op == "mean" else 1)
    ah.assert_close(out, expected, dtype=dtype, n=len(xs), scale=scale, baseline=baseline, name=name, where=where)


def needs_baseline(dtype: torch.dtype, op: str) -> bool:
    """A bfloat16 sum's rounding depends on the order of the additions: torch.distributed's own result in
    bfloat16 sets the bar (float32 and float64 sums stay within the rounding floor; the rest is exact)."""
    return dtype == torch.bfloat16 and op in ("sum", "mean")


def op_for(op: str, dtype: torch.dtype) -> str:
    """op="mean" is for floating tensors (on integers it is a bad-input case, tested apart): "sum" instead."""
    return "sum" if op == "mean" and not dtype.is_floating_point else op


def assert_same_on_every_rank(res: list[dict], *, name: str, where: str) -> None:
    __tracebackhide__ = True
    for rank in range(1, len(res)):
        ah.assert_equal(res[rank]["out"], res[0]["out"], name=f"{name} on rank {rank} vs rank 0", where=where)


def reduction_call(ranks, fn: str, dtype: torch.dtype, world: int, shape: tuple[int, ...], op: str, seed: int,
                   **kwargs) -> tuple[list, str, list[dict], str]:
    """One reducing collective on :func:`inputs`, with torch.distributed's own result as the baseline where
    :func:`needs_baseline`: ``(xs, op, results, what)``, ``op`` as :func:`op_for` adapts it to ``dtype``."""
    __tracebackhide__ = True
    op = op_for(op, dtype)
    xs = inputs(world, shape, dtype, seed)
    what = where(fn, xs, seed, **kwargs, op=op)
    return xs, op, results(ranks, fn, xs, what, **kwargs, op=op, oracle=needs_baseline(dtype, op)), what


def plain_call(ranks, fn: str, dtype: torch.dtype, world: int, shape: tuple[int, ...], seed: int,
               **kwargs) -> tuple[list, list[dict], str]:
    """``fn`` on :func:`inputs`, without torch.distributed's baseline (exact results, byte counts):
    ``(xs, results, what)``."""
    __tracebackhide__ = True
    xs = inputs(world, shape, dtype, seed)
    what = where(fn, xs, seed, **kwargs)
    return xs, results(ranks, fn, xs, what, **kwargs, oracle=False), what


def assert_sent(res: list[dict], most: int, least: int, what: str, *, most_is: str, least_is: str) -> None:
    """The bytes each rank sent (the communicator's count) are at most ``most`` (``most_is``, its formula), and
    the ranks together sent at least ``least``."""
    __tracebackhide__ = True
    sent = [r["bytes_sent"] for r in res]
    worst = max(range(len(sent)), key=lambda rank: sent[rank])
    assert sent[worst] <= most, (f"rank {worst} sent {sent[worst]} bytes, more than {most_is} = {most} "
                                 f"(bytes sent by rank: {sent}) [{what}]")
    assert sum(sent) >= least, (f"the ranks sent {sum(sent)} bytes in all, less than {least_is} = {least}: "
                                f"payload must go through comm.send/isend (bytes sent by rank: {sent}) [{what}]")


# ----------------------------------------------------------------------------- DDP: model and oracle
VOCAB, DIM = 7, 5
MOMENTUM = 0.5
ADAMW = {"lr": 0.05, "weight_decay": 0.1}  # torch.optim.AdamW's settings in the sharded-optimizer tests


class Net(nn.Module):
    """The DDP tests' model, float64: ids (B, T) -> logits (B, T, VOCAB).

    embed -> · scale (a buffer) -> tanh(hidden) [-> + frozen(h), a frozen layer] -> head [tied to embed]
    [an ``unused`` layer forward never calls]."""

    def __init__(self, tied: bool = False, frozen: bool = False, unused: bool = False):
        super().__init__()
        kw = dict(dtype=torch.float64)
        self.embed = nn.Embedding(VOCAB, DIM, **kw)
        self.hidden = nn.Linear(DIM, DIM, **kw)
        self.frozen = nn.Linear(DIM, DIM, **kw).requires_grad_(False) if frozen else None
        self.unused = nn.Linear(DIM, 2, **kw) if unused else None
        self.head = nn.Linear(DIM, VOCAB, bias=False, **kw)
        if tied:
            self.head.weight = self.embed.weight
        self.register_buffer("scale", torch.ones(DIM, **kw))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.embed(ids) * self.scale  # (B, T, DIM)
        h = torch.tanh(self.hidden(h))
        if self.frozen is not None:
            h = h + self.frozen(h)
        return self.head(h)  # (B, T, VOCAB)


def net_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1))  # the mean over the tokens


def state_of(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter (a tied one once) and buffer, by name, detached copies."""
    named = [*model.named_parameters(), *model.named_buffers()]
    return {name: t.detach().clone() for name, t in named}


def load_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, value in state.items():
            owner, _, attr = name.rpartition(".")
            getattr(model.get_submodule(owner), attr).copy_(value)


def sgd_step(model: nn.Module, momenta: dict, lr: float) -> None:
    """torch.optim.SGD(lr=lr, momentum=MOMENTUM)'s step, written out (torch.optim imports torch._dynamo:
    seconds in every worker): b = MOMENTUM·b + g (b = g at the first step), p -= lr·b; then grad = None.
    ``momenta`` keeps b by parameter."""
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is None:
                continue
            b = momenta.get(id(p))
            b = p.grad.clone() if b is None else b.mul_(MOMENTUM).add_(p.grad)
            momenta[id(p)] = b
            p.add_(b, alpha=-lr)
            p.grad = None


def train_single_process(config: dict, state: dict, batches: list, lr: float,
                         adamw: bool = False) -> tuple[dict, dict, list, dict]:
    """The oracle of DDP: one process, rank 0's initial state, each step on the concatenation of every
    rank's micro-batches with the mean loss, then SGD (``sgd_step``) or torch.optim.AdamW(**ADAMW).
    ``batches[step][rank][micro] = (ids, targets)``. Returns the final state, the gradients of the last
    step, (AdamW) the bytes of each parameter's optimizer state, and the size of the terms behind each final
    value (:func:`_final_terms`)."""
    model = Net(**config)
    load_state(model, state)
    opt = torch.optim.AdamW(model.parameters(), **ADAMW) if adamw else None
    momenta: dict = {}
    grads: dict = {}
    terms = {name: value.abs() for name, value in state_of(model).items()}  # |p_0|
    pushed: dict = {}  # SGD: the terms of the momentum buffer b, by parameter name
    for step in batches:
        gradient_terms = _gradient_terms(model, step)
        before = state_of(model)
        ids = torch.cat([ids for rank in step for ids, _ in rank])  # (N·M·B, T)
        targets = torch.cat([t for rank in step for _, t in rank])
        net_loss(model(ids), targets).backward()
        grads = {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}
        if opt is not None:
            opt.step()
            opt.zero_grad(set_to_none=True)
            for name, value in state_of(model).items():
                terms[name] = terms[name] + (value - before[name]).abs()  # the size of AdamW's update
        else:
            sgd_step(model, momenta, lr)
            for name, g in gradient_terms.items():
                pushed[name] = g if name not in pushed else MOMENTUM * pushed[name] + g
                terms[name] = terms[name] + lr * pushed[name]
    shares = [_tensor_bytes(s.values()) for s in opt.state.values()] if opt is not None else []
    return state_of(model), grads, shares, {name: t.max().item() for name, t in terms.items()}


def _gradient_terms(model: nn.Module, step: list) -> dict[str, torch.Tensor]:
    """The terms of one step's gradient, the mean over the ranks' micro-batches of each micro-batch's mean-loss
    gradient (an all-reduced sum, which may cancel far below its terms): the mean of their absolute values,
    by parameter name; parameters no micro-batch reaches are left out. With ``train_single_process`` this makes
    the terms of a final parameter |p_0| + lr · sum over steps of the momentum buffer's terms (SGD)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    parts = [micro for rank in step for micro in rank]
    out: dict[str, torch.Tensor] = {}
    for ids, targets in parts:
        gs = torch.autograd.grad(net_loss(model(ids), targets), [p for _, p in named], allow_unused=True)
        for (name, _), g in zip(named, gs):
            if g is not None:
                out[name] = out.get(name, 0) + g.abs() / len(parts)
    return out


def ddp_case(world: int, config: dict, seed: int, steps: int, batch: int, micro: int = 1) -> tuple[list, list]:
    """Each rank's initial state (rank r's own random weights and buffer, which DDP must replace by rank 0's)
    and its batches: ``batches[step][rank][micro] = (ids, targets)``, (batch, 3) token ids each."""
    from fmspec.suites import strategies as ss

    states = []
    for rank in range(world):
        state = state_of(Net(**config))
        for i, name in enumerate(state):
            state[name] = 0.5 * ss.randn(tuple(state[name].shape), seed + 1000 * rank + i)
        states.append(state)
    gen = torch.Generator().manual_seed(seed)

    def tokens() -> torch.Tensor:
        return torch.randint(0, VOCAB, (batch, 3), generator=gen)  # (B, T)

    batches = [[[(tokens(), tokens()) for _ in range(micro)] for _ in range(world)] for _ in range(steps)]
    return states, batches


@dataclass
class DDPRun:
    """One DDP training run: every rank's result and the single-process oracle's."""

    res: list[dict]  # each rank's: constructed, final, grads, sent, state_bytes, bytes_sent
    final: dict  # the oracle's final parameters and buffers
    grads: dict  # the oracle's gradients of the last step
    shares: list  # the oracle's AdamW state bytes, by parameter
    terms: dict  # the size of the terms behind each final value (train_single_process)
    states: list  # each rank's initial state
    tokens: int  # the tokens of one step, over every rank and micro-batch
    what: str


def run_ddp(ranks, config: dict, world: int, seed: int, steps: int, batch: int, micro: int = 1,
            bucket_cap_bytes: int = 2**20, lr: float = 0.3, sharded: bool = False) -> DDPRun:
    """Train with the candidate's DDP (and, ``sharded``, its ShardedOptimizer over AdamW), and the oracle."""
    __tracebackhide__ = True
    states, batches = ddp_case(world, config, seed, steps, batch, micro)
    optimizer = f"ShardedOptimizer(AdamW, {ADAMW})" if sharded else f"SGD(lr={lr}, momentum={MOMENTUM})"
    what = (f"collectives.DistributedDataParallel(Net({', '.join(f'{k}={v}' for k, v in config.items())}), comm, "
            f"bucket_cap_bytes={bucket_cap_bytes}) on {world} ranks, {steps} {optimizer} steps of {micro} "
            f"micro-batch(es) of {batch}x3 tokens a rank, seed {seed}")
    res = ranks.ddp(states, [[step[r] for step in batches] for r in range(world)], what=what, config=config, lr=lr,
                    bucket_cap_bytes=bucket_cap_bytes, sharded=sharded)
    raise_candidate_errors(res, what)
    final, grads, shares, terms = train_single_process(config, states[0], batches, lr, adamw=sharded)
    return DDPRun(res, final, grads, shares, terms, states, world * micro * batch * 3, what)


def assert_trained_like_one_process(run: DDPRun) -> None:
    """Every rank holds the same bits, equal (float64) to the single process's parameters and buffers, relative
    to the size of the terms behind them (the initial value and every update's averaged gradient terms)."""
    __tracebackhide__ = True
    for rank, r in enumerate(run.res):
        for name, value in run.final.items():
            if rank > 0:
                ah.assert_equal(r["final"][name], run.res[0]["final"][name], name=f"{name} on rank {rank} vs rank 0",
                                where=run.what)
            ah.assert_close(r["final"][name], value, n=run.tokens, scale=run.terms[name],
                            name=f"{name} after training, rank {rank}", where=run.what)


def _tensor_bytes(values, seen: set | None = None) -> int:
    seen = set() if seen is None else seen
    total = 0
    for t in values:
        if isinstance(t, torch.Tensor) and (t.data_ptr(), t.numel()) not in seen:
            seen.add((t.data_ptr(), t.numel()))
            total += t.numel() * t.element_size()
    return total


def optimizer_state_bytes(obj: Any) -> int:
    """The optimizer state a rank keeps: bytes of the distinct tensors in the ``state`` of every
    torch.optim.Optimizer that is ``obj`` or found in its attributes (three levels down)."""
    seen_tensors: set = set()
    seen: set[int] = set()
    total = 0

    def visit(o: Any, depth: int) -> None:
        nonlocal total
        if id(o) in seen or depth > 3:
            return
        seen.add(id(o))
        if isinstance(o, torch.optim.Optimizer):
            for per_param in o.state.values():
                if isinstance(per_param, dict):
                    total += _tensor_bytes(per_param.values(), seen_tensors)
        children = list(o) if isinstance(o, (list, tuple)) else list(getattr(o, "__dict__", {}).values())
        for child in children:
            if isinstance(child, (torch.Tensor, nn.Module, type)):
                continue  # parameters and models hold no optimizer state
            if isinstance(child, (torch.optim.Optimizer, list, tuple)) or hasattr(child, "__dict__"):
                visit(child, depth + 1)

    visit(obj, 0)
    return total


# ------------------------------------------------------------------------------------------ the workers
class _Work:
    """An asynchronous message: ``wait()`` returns when the tensor may be reused (send) or holds the data (recv)."""

    def __init__(self, work, comm: "Communicator", label: str, after=None):
        self._work, self._comm, self._label, self._after, self._done = work, comm, label, after, False

    def wait(self) -> bool:
        if not self._done:
            self._comm._report(f"waiting for {self._label}")
            self._work.wait()
            if self._after is not None:
                self._after()
            self._done = True
        return True

    def is_completed(self) -> bool:
        return self._done or self._work.is_completed()


class Communicator:
    """What the suite hands a candidate's collectives: point-to-point messages among the ranks of one
    process group (torch.distributed underneath), every payload byte counted.

    ``rank``, ``world_size``, ``device``; ``send(t, dst)``, ``recv(t, src)``, ``isend``/``irecv`` (return a
    work with ``wait()``); ``all_gather_object(obj)`` for metadata; ``group``, the torch.distributed group,
    for candidates built on torch.distributed's own collectives (that traffic is not counted).
    ``bytes_sent``, ``messages_sent``, ``bytes_received``: this rank's counts."""

    def __init__(self, rank: int, world_size: int, group, device: torch.device, tag: int, report=None,
                 trace: bool = False):
        self.rank, self.world_size, self.group, self.device = rank, world_size, group, device
        self.bytes_sent = self.messages_sent = self.bytes_received = 0
        self.sent: list | None = [] if trace else None  # (dst, payload) of every message, when tracing
        self.phase = ""
        self._tag, self._reporter, self._ops = tag, report, 0
        self._lock = threading.Lock()
        self._global = [dist.get_global_rank(group, r) for r in range(world_size)]

    def __repr__(self) -> str:
        return f"<Communicator rank {self.rank} of {self.world_size}>"

    def _report(self, text: str) -> None:
        if self._reporter is not None:
            self._reporter(f"{self.phase}: {text}" if self.phase else text)

    def _peer(self, peer: Any, name: str, fn: str) -> int:
        if not isinstance(peer, int) or isinstance(peer, bool) or not 0 <= peer < self.world_size or peer == self.rank:
            raise ValueError(f"{fn}: {name} must be another rank in [0, {self.world_size}), got {peer!r} "
                             f"(this is rank {self.rank})")
        return self._global[peer]

    @staticmethod
    def _tensor(tensor: Any, fn: str) -> torch.Tensor:
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{fn}: tensor must be a torch.Tensor, got {type(tensor).__name__}")
        return tensor

    def _next(self) -> int:
        with self._lock:
            self._ops += 1
            return self._ops

    def isend(self, tensor: torch.Tensor, dst: int) -> _Work:
        peer = self._peer(dst, "dst", "isend")
        payload = self._tensor(tensor, "isend").detach().contiguous()
        k = self._next()
        with self._lock:
            self.bytes_sent += payload.numel() * payload.element_size()
            self.messages_sent += 1
            if self.sent is not None:
                self.sent.append((dst, payload.cpu().clone()))
        label = f"message {k}: send {_describe_tensor(payload)} to rank {dst}"
        self._report(label)
        return _Work(dist.isend(payload, peer, group=self.group, tag=self._tag), self, label)

    def irecv(self, tensor: torch.Tensor, src: int) -> _Work:
        peer = self._peer(src, "src", "irecv")
        tensor = self._tensor(tensor, "irecv")
        buf = tensor if tensor.is_contiguous() else torch.empty_like(tensor, memory_format=torch.contiguous_format)
        k = self._next()
        with self._lock:
            self.bytes_received += buf.numel() * buf.element_size()
        label = f"message {k}: recv {_describe_tensor(buf)} from rank {src}"
        self._report(label)
        after = (lambda: tensor.copy_(buf)) if buf is not tensor else None
        return _Work(dist.irecv(buf, peer, group=self.group, tag=self._tag), self, label, after)

    def send(self, tensor: torch.Tensor, dst: int) -> None:
        self.isend(tensor, dst).wait()

    def recv(self, tensor: torch.Tensor, src: int) -> torch.Tensor:
        self.irecv(tensor, src).wait()
        return tensor

    def all_gather_object(self, obj: Any) -> list:
        """Every rank's ``obj``, by rank: small metadata (shapes, dtypes, options; at most META_LIMIT bytes
        pickled, no tensors), exchanged in one torch.distributed all_gather and not counted as payload."""
        buf = io.BytesIO()
        _MetaPickler(buf).dump(obj)
        data = buf.getvalue()
        if len(data) > META_LIMIT:
            raise ValueError(f"all_gather_object: {len(data)} bytes pickled, more than the {META_LIMIT} allowed "
                             f"for metadata (payload goes through send/recv)")
        self._report(f"all_gather_object ({len(data)} bytes)")
        mine = torch.zeros(META_LIMIT + 8, dtype=torch.uint8, device=self.device)
        mine[:8] = torch.tensor(list(len(data).to_bytes(8, "little")), dtype=torch.uint8)
        mine[8:8 + len(data)] = torch.tensor(list(data), dtype=torch.uint8)
        everyone = [torch.empty_like(mine) for _ in range(self.world_size)]
        dist.all_gather(everyone, mine, group=self.group)
        out = []
        for t in everyone:
            raw = bytes(t.cpu().tolist())
            out.append(pickle.loads(raw[8:8 + int.from_bytes(raw[:8], "little")]))
        return out

    def counts(self) -> dict:
        return {"bytes_sent": self.bytes_sent, "messages_sent": self.messages_sent,
                "bytes_received": self.bytes_received}


def connect_pairs(group, world: int, rank: int, device: torch.device) -> None:
    """Make the NCCL communicators of ``group`` (ranks 0..world-1, a prefix of the world) before any call:
    the group's own (a barrier) and one per pair of ranks (one message each: torch.distributed makes a
    two-rank communicator for each pair that exchanges point-to-point messages, at its first message, and
    both ranks wait in it until the other arrives). Made lazily by a ring, where every rank first sends to
    its right neighbour, each rank would wait for a neighbour waiting for its own: a deadlock. Here every
    rank takes the pairs in the same order, (0, 1), (0, 2), ..., (1, 2), ...: the earliest pair not yet
    made always has both its ranks at it, so none waits forever."""
    one = torch.zeros(1, device=device)
    dist.barrier(group=group)
    for a in range(world):
        for b in range(a + 1, world):
            if rank == a:
                dist.send(one, dist.get_global_rank(group, b), group=group)
            elif rank == b:
                dist.recv(one, dist.get_global_rank(group, a), group=group)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _MetaPickler(pickle.Pickler):
    def reducer_override(self, obj):
        if isinstance(obj, (torch.Tensor, torch.UntypedStorage, torch.TypedStorage)):
            raise TypeError("all_gather_object: tensors are payload: send them with send/recv")
        return NotImplemented


def _describe_tensor(t: torch.Tensor) -> str:
    return f"{str(t.dtype).removeprefix('torch.')}{list(t.shape)}"


def _describe_error(exc: BaseException) -> dict:
    return {"type": type(exc).__name__, "message": str(exc)[:2000],
            "traceback": "".join(traceback.format_exception(exc)[-12:])[-4000:]}


def _cpu(value: Any) -> Any:
    """``value`` with every tensor in it (lists, tuples, dicts) on the CPU, for the parent."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, (list, tuple)):
        return type(value)(_cpu(v) for v in value)
    if isinstance(value, dict):
        return {k: _cpu(v) for k, v in value.items()}
    return value


def _to(value: Any, device: torch.device) -> Any:
    """``value`` with every tensor in it (lists, tuples, dicts) on ``device``: the parent sends CPU tensors."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (list, tuple)):
        return type(value)(_to(v, device) for v in value)
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    return value


class Worker:
    """One rank: the process group, its subgroups, the candidates it has loaded, the task loop."""

    def __init__(self, conn: Connection, backend: str, steps: mmap.mmap):
        self.conn = conn
        self.steps = steps
        self.rank, self.size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        self.device = torch.device("cpu")
        kwargs = {}
        if backend == "nccl":
            self.device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
            torch.cuda.set_device(self.device)
            kwargs["device_id"] = self.device
        dist.init_process_group(backend, init_method="env://", timeout=timedelta(seconds=PG_TIMEOUT), **kwargs)
        self.groups = {n: dist.new_group(list(range(n))) for n in range(1, self.size)}  # every rank makes every group
        self.groups[self.size] = dist.group.WORLD
        self.tags = {n: 0 for n in self.groups}
        self.candidates: dict[str, Any] = {}
        self._send_lock = threading.Lock()
        if backend == "nccl":  # NCCL's communicators now, not in a test's call (seconds each, at first use)
            for n, group in sorted(self.groups.items()):
                if self.rank < n:
                    connect_pairs(group, n, self.rank, self.device)

    def send(self, message: tuple) -> None:
        data = pickle.dumps(message)
        with self._send_lock:
            self.conn.send_bytes(data)

    def step(self, text: str) -> None:
        """Note what this rank is doing, for the parent's message if the call never ends."""
        data = text.encode("utf-8", "replace")[:STEP_BYTES - 2]
        self.steps[2:2 + len(data)] = data
        self.steps[:2] = len(data).to_bytes(2, "little")

    def comm(self, world: int, *, trace: bool = False, report: bool = True) -> Communicator:
        self.tags[world] = (self.tags[world] + 1) % 2**30  # every rank of the world counts the same calls
        reporter = self.step if report else None
        return Communicator(self.rank, world, self.groups[world], self.device, self.tags[world], reporter, trace)

    def feature(self, spec: str, feature: str) -> Any:
        """The candidate's function (``collectives.all_reduce``), the candidate loaded once per spec."""
        from fmspec import loader

        if spec not in self.candidates:
            self.candidates[spec] = loader.load(spec)
        return self.candidates[spec].resolve(feature)

    def serve(self) -> None:
        while True:
            try:
                message = pickle.loads(self.conn.recv_bytes())
            except (EOFError, OSError):
                return
            if message[0] == "exit":
                return
            _, task, world, kwargs = message
            self.step(f"{task} task received, candidate code not called yet")
            try:
                result = TASKS[task](self, world, **kwargs)
            except BaseException:  # the harness's own failure (a candidate's exception is in the result)
                self.send(("fault", traceback.format_exc()[-4000:]))
                continue
            self.send(("result", result))


def _torch_collective(comm: Communicator, fn: str, tensor: torch.Tensor, op: str = "sum", root: int = 0) -> Any:
    """torch.distributed's own collective on the same input: the suite's same-dtype baseline."""
    red = {"sum": dist.ReduceOp.SUM, "mean": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}
    n, g = comm.world_size, comm.group
    if fn in ("all_reduce", "naive_all_reduce", "reduce", "reduce_scatter"):
        out = tensor.clone()
        dist.all_reduce(out, op=red[op], group=g)
        if op == "mean":
            out = out / n
        if fn == "reduce":
            return out if comm.rank == root else None
        if fn == "reduce_scatter":
            return torch.tensor_split(out.reshape(-1), n)[comm.rank].clone()
        return out
    if fn == "broadcast":
        out = tensor.clone()
        dist.broadcast(out, src=dist.get_global_rank(g, root), group=g)
        return out
    if fn == "all_gather":
        rows = [torch.empty_like(tensor) for _ in range(n)]
        dist.all_gather(rows, tensor.contiguous(), group=g)
        return torch.stack(rows)
    raise ValueError(f"no torch.distributed baseline for {fn}")


def _task_collective(w: Worker, world: int, spec: str, fn: str, tensor: Any, kwargs: dict, oracle: bool,
                     trace: bool) -> dict:
    comm = w.comm(world, trace=trace)
    if isinstance(tensor, torch.Tensor):
        tensor = tensor.to(comm.device)
    baseline = _torch_collective(comm, fn, tensor, **kwargs) if oracle else None  # before any candidate code
    impl = w.feature(spec, f"collectives.{fn}")
    comm.phase = fn
    comm._report("called, no message yet")
    try:
        out = impl(comm, tensor, **kwargs)
    except BaseException as exc:
        return {"error": _describe_error(exc), **comm.counts()}
    return {"out": _cpu(out), "torch": _cpu(baseline), "input_after": _cpu(tensor), "sent": comm.sent,
            **comm.counts()}


def _task_ddp(w: Worker, world: int, spec: str, state: dict, config: dict, batches: list, lr: float,
              bucket_cap_bytes: int, sharded: bool = False) -> dict:
    """Rank r: Net(**config) from its own initial ``state``, wrapped in the candidate's DDP, then one step per
    entry of ``batches`` (this rank's micro-batches: every one but the last inside ``no_sync()``): SGD, or
    with ``sharded`` the candidate's ShardedOptimizer over torch.optim.AdamW(**ADAMW)."""
    comm = w.comm(world)
    model = Net(**config).to(comm.device)
    load_state(model, state)  # the parent's CPU tensors copied in
    batches = _to(batches, comm.device)
    comm.phase = "DistributedDataParallel(...) construction"
    comm._report("called, no message yet")
    try:
        ddp = w.feature(spec, "collectives.DistributedDataParallel")(model, comm, bucket_cap_bytes=bucket_cap_bytes)
        constructed = state_of(model)
        opt = None
        if sharded:
            comm.phase = "ShardedOptimizer(...) construction"
            opt = w.feature(spec, "collectives.ShardedOptimizer")(model.parameters(), comm, torch.optim.AdamW, **ADAMW)
        momenta: dict = {}
        sent, grads = [], {}
        for step, micro in enumerate(batches):
            per_micro = []
            for m, (ids, targets) in enumerate(micro):
                synced = m == len(micro) - 1
                comm.phase = f"step {step}, micro-batch {m} ({'synced' if synced else 'no_sync'}), forward and backward"
                before = comm.bytes_sent
                with contextlib.nullcontext() if synced else ddp.no_sync():
                    loss = net_loss(ddp(ids), targets) / len(micro)
                    loss.backward()
                per_micro.append(comm.bytes_sent - before)
            sent.append(per_micro)
            grads = {n: None if p.grad is None else p.grad.detach().clone() for n, p in model.named_parameters()}
            if opt is not None:
                comm.phase = f"step {step}, ShardedOptimizer.step()"
                opt.step()
                opt.zero_grad(set_to_none=True)
            else:
                sgd_step(model, momenta, lr)
    except BaseException as exc:
        return {"error": _describe_error(exc), **comm.counts()}
    return {"constructed": _cpu(constructed), "final": _cpu(state_of(model)), "grads": _cpu(grads), "sent": sent,
            "state_bytes": optimizer_state_bytes(opt) if opt is not None else None, **comm.counts()}


def _task_bench(w: Worker, world: int, spec: str, impl: str, sizes: list[int], rounds: list[int],
                warmup: int = 1) -> dict:
    """Seconds of each timed round of an all-reduce of ``sizes[i]`` bytes of float32, between barriers (on a
    GPU: from the host, the device synchronized before and after the call)."""
    comm = w.comm(world, report=False)
    cuda = comm.device.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(comm.device)

    if impl == "torch":
        def call(x):
            dist.all_reduce(x, group=comm.group)  # in place: what a user of torch.distributed calls
    else:
        fn = w.feature(spec, f"collectives.{impl}")

        def call(x):
            fn(comm, x, "sum")
    out = []
    for nbytes, n_rounds in zip(sizes, rounds):
        gen = torch.Generator().manual_seed(comm.rank)
        x = torch.randn(nbytes // 4, generator=gen).to(comm.device)
        times = []
        before = comm.bytes_sent
        for i in range(warmup + n_rounds):
            dist.barrier(group=comm.group)
            sync()
            start = time.perf_counter()
            call(x)
            sync()
            if i >= warmup:
                times.append(time.perf_counter() - start)
        out.append({"bytes": nbytes, "seconds": times,
                    "bytes_sent_per_call": (comm.bytes_sent - before) // (warmup + n_rounds)})
        del x
    return {"sizes": out}


TASKS = {"collective": _task_collective, "ddp": _task_ddp, "bench": _task_bench}


def _exit_with_parent() -> None:
    """A worker whose parent died (killed pytest) exits too, instead of waiting on its peers forever."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(70)

    threading.Thread(target=watch, daemon=True).start()


def zygote_main() -> None:
    """Entry point of the zygote (``python -c ZYGOTE_CMD <socket fd>``, :func:`worker_environment`): import
    what every worker needs, once; then, for each request on the socket (the worker's socket as SCM_RIGHTS,
    then the request), fork a worker (:func:`_worker_process`); report each worker's exit status once
    reaped. When the pool's process closes the socket or exits: kill the workers, reap them, exit."""
    sock = socket.socket(fileno=int(sys.argv[1]))
    conn = Connection(os.dup(sock.fileno()))
    for name in pickle.loads(conn.recv_bytes())["preload"]:
        importlib.import_module(name)
    parent = os.getppid()
    wake_r, wake_w = os.pipe()
    for fd in (wake_r, wake_w):
        os.set_blocking(fd, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a worker's exit wakes the select through wake_w
    workers: set[int] = set()
    try:
        while os.getppid() == parent:
            readable, _, _ = select.select([sock, wake_r], [], [], 1.0)
            if wake_r in readable:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 512)
            _reap(conn, workers)
            if sock not in readable:
                continue
            _, fds, _, _ = socket.recv_fds(sock, 1, 1)
            if not fds:
                return  # the socket closed: the pool is done
            request = pickle.loads(conn.recv_bytes())
            sys.stdout.flush()
            sys.stderr.flush()
            try:
                pid = os.fork()
            except OSError as exc:  # out of processes or memory: the pool's start fails with this
                os.close(fds[0])
                conn.send_bytes(pickle.dumps(("fork failed", f"os.fork(): {exc}")))
                continue
            if pid == 0:
                code = 1
                try:
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    os.close(wake_r)
                    os.close(wake_w)
                    conn.close()
                    sock.close()
                    _worker_process(fds[0], request)
                    code = 0
                except BaseException:
                    traceback.print_exc()
                finally:
                    os._exit(code)
            os.close(fds[0])
            workers.add(pid)
            conn.send_bytes(pickle.dumps(("forked", pid)))
    except (EOFError, OSError):
        return
    finally:
        for pid in workers:
            for kill in (os.killpg, os.kill):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    kill(pid, signal.SIGKILL)
        for pid in workers:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        os._exit(0)


def _reap(conn: Connection, workers: set[int]) -> None:
    """The zygote: reap every worker that exited and report its status (as Popen.returncode has it)."""
    while workers:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        workers.discard(pid)
        conn.send_bytes(pickle.dumps(("exited", pid, os.waitstatus_to_exitcode(status))))


def _worker_process(conn_fd: int, request: dict) -> None:
    """A worker, just forked by the zygote: its own process group, its rank's environment, its output to its
    log; under ``--fmspec-isolate`` the candidate process's sandbox (:func:`fmspec.isolate.sandbox`: the
    log, the step file and the socket, opened before, stay writable); then the process group and the task
    loop."""
    os.setsid()  # its own process group: the pool kills it with everything it started
    os.environ.update(request["env"])
    out = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    conn = Connection(conn_fd)
    with open(request["steps"], "r+b") as fh:
        steps = mmap.mmap(fh.fileno(), STEP_BYTES)
    note = None
    if request["sandbox"] is not None:
        from fmspec import isolate

        note = isolate.sandbox(request["sandbox"]["private"], (), [tuple(h) for h in request["sandbox"]["hide"]])
    _exit_with_parent()
    sys.path[:0] = [p for p in request["sys_path"] if p not in sys.path]  # the parent's: --candidate mine.impl
    torch.set_num_threads(1)
    worker = Worker(conn, request["backend"], steps)
    worker.send(("ready", {"pid": os.getpid(), "rank": worker.rank, "sandbox": note}))
    worker.serve()
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown: a candidate's threads or the process group may not end cleanly


# ------------------------------------------------------------------------------- fixtures (test and bench)
@pytest.fixture(scope="session")
def pool():
    """The process's pool, for the session: :func:`pool_size` workers on :func:`pool_backend` (nccl where
    there is a CUDA device for every rank, else gloo; the environment may say which)."""
    p = shared_pool()
    yield p
    p.close()


@pytest.fixture
def ranks(pool, candidate):
    """The pool, started (again, after a fault) before the test runs, bound to the candidate's spec."""
    spec = candidate_spec(candidate)
    pool.ensure_started(sandbox_for(candidate, spec))
    return Ranks(pool, spec)
