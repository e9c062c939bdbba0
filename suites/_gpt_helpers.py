"""gpt suite helpers (imported ``as gh``): the candidate's pieces, the debug data and the reference's runs,
each worked out once per process, and a composition failure turned into a test failure that names the piece.

The tokenized slice and the runs live in this module's dictionaries for the process's lifetime (a few hundred
KB), keyed by the identity of the pieces that made them, so the reference candidate's run *is* the reference
run and a mutant that leaves the tokenizer alone reuses its ids.

The reference's two debug runs (2 s each, paid again by every process whose pieces are not the reference's
own) are also cached on disk, on the machine that runs the tests: a file per fingerprint of everything the
run depends on (the source of every reference module, torch's version and build, the CPU's model and vector
capability, the thread count and torch's numeric settings, the configurations and a checksum of the ids) in
:func:`cache_dir` (``FMSPEC_CACHE_DIR``, else ``$XDG_CACHE_HOME/fmspec``, else ``~/.cache/fmspec``). The run
is deterministic (seeded generators, one thread), so a cached curve *is* the installed reference's run, bit
for bit; a fingerprint not cached is computed here, in the pytest process, and written (a temp file in the
same folder, then ``os.replace``). A cache that cannot be read, parsed or written is no error: the run is
computed. A candidate never adds to it: isolated (``--fmspec-isolate``), its process can write nothing there;
in process, only a test of one of fmspec's own candidates writes (tests/test_gpt_reference_cache.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import torch

from fmspec import outcomes, plugin, trust
from fmspec.reference import gpt
from fmspec.suites import asserts as ah

DEBUG = gpt.DEBUG
# the float64 runs: small enough for a few exact steps, with dropout (replayed by checkpointing), sinusoidal
# positions (posenc.sinusoidal) and three blocks (segments of one and two)
SMALL = replace(DEBUG.model, d=32, n_layers=3, n_heads=4, context=32, max_positions=32, dropout=0.1,
                positions="sinusoidal")
SMALL_TRAIN = replace(DEBUG.train, steps=5, batch=4, warmup=2, dtype=torch.float64)
TAIL = 20  # the debug runs are judged on the mean loss of their last TAIL steps (one step's batch is noisy)
ABOVE = 0.05  # a candidate's debug run may end at most 5% above the reference's ...
BELOW = 0.20  # ... and at most 20% below it: lower means the model sees what it predicts

_TEXT: dict = {}
_DATA: dict = {}
_RUNS: dict = {}


def parts_of(candidate) -> gpt.Parts:
    """Each piece of the composition from the candidate where it has it, from the reference otherwise."""
    return gpt.Parts.from_candidate(candidate.resolve, candidate.name)


def require_some(candidate, parts: gpt.Parts, cfg: gpt.Config, dtype: torch.dtype, lora: bool = False) -> dict:
    """The {feature: source} a run with ``cfg`` in ``dtype`` on the CPU uses. Missing when none of them is
    the candidate's; unsupported when the candidate's CAPABILITIES exclude the CPU or ``dtype`` for the
    component of one of its pieces (a Triton-only flash kernel, say)."""
    used = parts.used(cfg, lora=lora)
    if not parts.candidate & set(used):
        outcomes.missing(f"the candidate provides none of the pieces this composition uses: {', '.join(used)}")
    name = str(dtype).removeprefix("torch.")
    for feature in sorted(parts.candidate & set(used)):
        caps = candidate.capabilities.get(feature.split(".")[0], {})
        devices, dtypes = caps.get("devices", plugin.DEFAULT_DEVICES), caps.get("dtypes", plugin.DEFAULT_DTYPES)
        if "cpu" not in devices or name not in dtypes:
            outcomes.unsupported(f"{feature} on cpu in {name} (CAPABILITIES), which this composition runs")
    return used


def debug_text() -> str:
    if "debug" not in _TEXT:
        _TEXT["debug"] = gpt.read_corpus(gpt.corpus_path(), DEBUG.chars)
    return _TEXT["debug"]


def debug_data(parts: gpt.Parts) -> gpt.Data:
    """The debug slice tokenized with the parts' BPE (trained on its first 90%): once per tokenizer."""
    key = (id(parts["bpe.train"]), id(parts["bpe.Tokenizer"]))
    if key not in _DATA:
        _DATA[key] = gpt.tokenize(debug_text(), DEBUG.vocab_size, parts)
    return _DATA[key]


def run(parts: gpt.Parts, cfg: gpt.Config, tcfg: gpt.TrainConfig, data: gpt.Data) -> gpt.Result:
    """``gpt.train`` once per (configuration, data, pieces used) in this process."""
    cfg = replace(cfg, vocab_size=data.vocab_size)
    used = [f for f in parts.used(cfg) if not f.startswith("bpe.")]
    key = (cfg, tcfg, data.key(), tuple(id(parts[f]) for f in used))
    if key not in _RUNS:
        _RUNS[key] = gpt.train(cfg, tcfg, data, parts)
    return _RUNS[key]


def reference_run(cfg: gpt.Config, tcfg: gpt.TrainConfig, data: gpt.Data) -> gpt.Result:
    return run(gpt.Parts.reference(), cfg, tcfg, data)


@dataclass
class Curve:
    """What a debug test needs of the reference's run: its losses, seconds and parameter count, and
    whether it was read from the cache (``cached``) or computed in this process."""

    losses: list
    seconds: float
    params: int
    cached: bool = False


_MACHINE: dict = {}  # the part of the fingerprint that is fixed for the process (the sources, torch, the CPU)
_CURVES: dict = {}  # fingerprint -> Curve: the in-process memo in front of the cache


def sources_digest(root: Path) -> str:
    """SHA-256 of every ``*.py`` under ``root`` (its path and bytes): any edit of the reference changes it."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def machine() -> tuple:
    """The reference's sources, Python's and torch's versions and build (its BLAS), the CPU's model and
    vector capability: once per process."""
    if "key" not in _MACHINE:
        try:
            cpu = sorted({line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                          if line.startswith("model name")})
        except OSError:
            cpu = [platform.processor() or platform.machine()]
        _MACHINE["key"] = (sources_digest(Path(gpt.__file__).resolve().parent), platform.python_version(),
                           torch.__version__, torch.__config__.show(), torch.backends.cpu.get_cpu_capability(), cpu)
    return _MACHINE["key"]


def fingerprint(cfg: gpt.Config, tcfg: gpt.TrainConfig, data: gpt.Data) -> str:
    """A digest of everything the reference's run of ``cfg`` and ``tcfg`` on ``data`` depends on: the
    :func:`machine`, the thread count and torch's numeric settings now, both configurations and the ids."""
    settings = (torch.get_num_threads(), torch.get_default_dtype(), torch.get_float32_matmul_precision(),
                torch.are_deterministic_algorithms_enabled())
    key = (machine(), settings, repr(cfg), repr(tcfg), data.key())
    return hashlib.sha256(repr(key).encode()).hexdigest()


def cache_dir() -> Path | None:
    """``FMSPEC_CACHE_DIR``, else ``$XDG_CACHE_HOME/fmspec``, else ``~/.cache/fmspec`` (None without a home)."""
    if os.environ.get("FMSPEC_CACHE_DIR"):
        return Path(os.environ["FMSPEC_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):  # the XDG spec: a relative path is invalid, ignored
        return Path(xdg) / "fmspec"
    try:
        return Path.home() / ".cache" / "fmspec"
    except RuntimeError:
        return None


def cache_file(fp: str) -> Path | None:
    folder = cache_dir()
    return None if folder is None else folder / f"gpt-reference-{fp}.json"


def read_cached(fp: str, steps: int) -> Curve | None:
    """The cached run of fingerprint ``fp``; None where there is none or it is not a run of ``steps`` finite
    losses under that fingerprint (unreadable, truncated, edited)."""
    path = cache_file(fp)
    if path is None:
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        losses, seconds, params = doc["losses"], doc["seconds"], doc["params"]
    except (OSError, ValueError, TypeError, KeyError):  # ValueError: not UTF-8 or not JSON; TypeError: not a dict
        return None
    if (doc.get("fingerprint") != fp or not isinstance(losses, list) or len(losses) != steps
            or not all(isinstance(x, float) and math.isfinite(x) for x in losses)
            or not isinstance(seconds, (int, float)) or not isinstance(params, int)):
        return None
    return Curve(losses, float(seconds), params, cached=True)


def write_cached(fp: str, curve: Curve, what: str) -> None:
    """Write the run under fingerprint ``fp``: a temp file in the cache folder, then ``os.replace`` (a reader
    sees the old file or the new one, never half of one; two writers of one fingerprint write the same run).
    Nothing happens where the folder cannot be written."""
    path = cache_file(fp)
    if path is None:
        return
    doc = {"about": f"the reference's gpt debug run ({what}), cached by fmspec/suites/_gpt_helpers.py",
           "fingerprint": fp, "torch": torch.__version__, "losses": curve.losses, "seconds": curve.seconds,
           "params": curve.params}
    tmp = None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
        os.replace(tmp, path)
    except OSError:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def reference_curve(cfg: gpt.Config, tcfg: gpt.TrainConfig, data: gpt.Data, store: bool = True) -> Curve:
    """The reference's run of ``cfg``: from the cache where its fingerprint is there, else computed here
    (:func:`reference_run`) and, with ``store``, written to the cache; once per process either way."""
    fp = fingerprint(replace(cfg, vocab_size=data.vocab_size), tcfg, data)
    if fp not in _CURVES:
        curve = read_cached(fp, tcfg.steps)
        if curve is None:
            result = reference_run(cfg, tcfg, data)
            curve = Curve(result.losses, result.seconds, result.model.n_params())
            if store:
                write_cached(fp, curve, f"{cfg.objective}, {tcfg.steps} steps")
        _CURVES[fp] = curve
    return _CURVES[fp]


def may_store(candidate) -> bool:
    """Whether a test of ``candidate`` may add to the cache: the candidate runs in a process of its own, or
    it is one of fmspec's own (candidates/). A candidate from elsewhere run in process shares this
    interpreter: its test reads the cache but never writes it."""
    if trust.is_builtin_candidate(candidate.source):
        return True
    isolate = sys.modules.get("fmspec.isolate")  # imported by every isolated run (fmspec/plugin.py), only then
    return isolate is not None and isolate.controller(candidate) is not None


def tail(losses: list) -> float:
    return sum(losses[-TAIL:]) / len(losses[-TAIL:])


@contextlib.contextmanager
def reported(metrics: dict):
    """A :class:`gpt.CompositionError` inside becomes this test's failure: the piece, step, phase and tensor,
    also kept in the test's metrics."""
    try:
        yield
    except gpt.CompositionError as exc:
        metrics["broken"] = exc.info()
        failure = str(exc)
    else:
        return
    pytest.fail(failure, pytrace=False)  # outside the except: the message once, without the chained original


def record_run(metrics: dict, name: str, result: gpt.Result | Curve) -> None:
    """The curve and the numbers of a run, for the results file (and the report's loss plot)."""
    metrics[f"{name}_loss_curve"] = [round(x, 4) for x in result.losses]
    metrics[f"{name}_tail_loss"] = round(tail(result.losses), 4)
    metrics[f"{name}_seconds"] = round(result.seconds, 3)
    metrics[f"{name}_params"] = result.params if isinstance(result, Curve) else result.model.n_params()
    if isinstance(result, Curve):
        metrics[f"{name}_cached"] = result.cached


def assert_curve_near_reference(got: list, ref: list, where: str) -> None:
    """The mean of the last TAIL losses within [1 - BELOW, 1 + ABOVE] x the reference's, every one finite."""
    __tracebackhide__ = True
    bad = [i for i, x in enumerate(got) if not math.isfinite(x)]
    assert not bad, f"the loss is not finite at step {bad[0]}: {got[bad[0]]} [{where}]"
    g, r = tail(got), tail(ref)
    assert g <= (1 + ABOVE) * r, (f"the loss ends at {g:.4f} (mean of the last {TAIL} steps), above the reference's "
                                  f"{r:.4f} + {ABOVE:.0%} = {(1 + ABOVE) * r:.4f} (started at {got[0]:.4f}) [{where}]")
    assert g >= (1 - BELOW) * r, (f"the loss ends at {g:.4f} (mean of the last {TAIL} steps), below the reference's "
                                  f"{r:.4f} - {BELOW:.0%} = {(1 - BELOW) * r:.4f}: the model sees what it is asked "
                                  f"to predict (labels not shifted, a mask missing, a loss over the wrong positions?) "
                                  f"[{where}]")


def composition(candidate, metrics: dict, cfg: gpt.Config, dtype: torch.dtype, lora: bool = False) -> tuple:
    """The parts a composition test uses (recorded in its metrics; missing or unsupported as
    :func:`require_some` says) and the debug slice tokenized by them: ``(parts, data)``."""
    parts = parts_of(candidate)
    metrics["pieces"] = require_some(candidate, parts, cfg, dtype, lora=lora)
    with reported(metrics):
        data = debug_data(parts)
    return parts, data


def debug_runs(candidate, metrics: dict, cfg: gpt.Config) -> tuple[gpt.Result, Curve]:
    """The debug run of ``cfg`` with the candidate's pieces and the reference's (same seed, data and
    batches; cached or computed, :func:`reference_curve`), both recorded in the metrics:
    ``(candidate's, reference's)``."""
    parts, data = composition(candidate, metrics, cfg, torch.float32)
    with reported(metrics):
        got = run(parts, cfg, DEBUG.train, data)
        ref = reference_curve(cfg, DEBUG.train, data, store=may_store(candidate))
    record_run(metrics, "candidate", got)
    record_run(metrics, "reference", ref)
    return got, ref


def assert_same_small_curve(candidate, metrics: dict, cfg: gpt.Config, names: tuple[str, str], what: str) -> None:
    """Five float64 steps of SMALL and of ``cfg`` (SMALL with one thing changed) give the same loss curve, to
    the rounding of a batch's tokens times d; both curves in the metrics under ``names``."""
    __tracebackhide__ = True
    parts, data = composition(candidate, metrics, cfg, torch.float64)
    with reported(metrics):
        base = run(parts, SMALL, SMALL_TRAIN, data)
        other = run(parts, cfg, SMALL_TRAIN, data)
    metrics.update({names[0]: base.losses, names[1]: other.losses})
    ah.assert_close(torch.tensor(other.losses, dtype=torch.float64), torch.tensor(base.losses, dtype=torch.float64),
                    n=SMALL_TRAIN.batch * SMALL.context * SMALL.d, name=f"loss curve with {what}",
                    where=f"pieces {other.pieces}")


def small_model(parts: gpt.Parts, data: gpt.Data, **overrides) -> gpt.GPT:
    """A float64 model of the SMALL configuration on ``data``'s vocabulary, built from ``parts``."""
    cfg = replace(SMALL, vocab_size=data.vocab_size, **overrides)
    return gpt.GPT(cfg, parts, seed=0).to(torch.float64)


def binomial_bound(k: int, n: int, p: float, z: float = 5.0) -> tuple[float, float]:
    """The interval n p ± (z sqrt(n p (1 - p)) + 1) a Binomial(n, p) count leaves with probability ~6e-7
    (z = 5, normal approximation; the 1 covers its error at small n p)."""
    half = z * math.sqrt(n * p * (1 - p)) + 1
    return n * p - half, n * p + half


# ------------------------------------------------------------------------------- the size of the terms
def embed_terms(ids: torch.Tensor, E: torch.Tensor, P: torch.Tensor, g: torch.Tensor) -> dict[str, float]:
    """For x = E[ids] + P[:T] and the loss sum(g ∘ x): the largest sum of absolute terms behind an element
    of x (two rows added), of dL/dE (a token's row sums g over every position holding it) and of dL/dP (a
    position's row sums g over the batch), for ``assert_close(scale=)``: each sum may cancel."""
    E, P, g = (t.detach().double().abs() for t in (E, P, g))
    T, d = ids.shape[1], E.shape[1]
    dE = torch.zeros_like(E).index_add_(0, ids.reshape(-1), g.reshape(-1, d))  # (V, d)
    return {"x": (E[ids] + P[:T]).max().item(), "dL/dE": dE.max().item(), "dL/dP": g.sum(0).max().item()}


def cross_entropy_terms(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """The mean over predictions of |logsumexp(z)| + |z_target|: the terms each -log softmax(z)[target] =
    logsumexp(z) - z_target subtracts (a confident prediction's loss is far smaller than both)."""
    z = logits.detach().double().reshape(-1, logits.shape[-1])  # (N, V)
    if not z.numel():
        return 0.0
    lse = torch.logsumexp(z, dim=-1)
    return (lse.abs() + z.gather(-1, targets.reshape(-1, 1))[:, 0].abs()).mean().item()


# ------------------------------------------------------------------------------------------ the block
def block_shapes(d: int) -> dict:
    """The contract's parameters of a block of width d, by name (nn.Linear weights are (out, in))."""
    shapes = {}
    for name, (n_out, n_in) in {"q": (d, d), "k": (d, d), "v": (d, d), "o": (d, d), "fc": (4 * d, d),
                                "proj": (d, 4 * d)}.items():
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (n_out, n_in), (n_out,)
    for name in ("ln1", "ln2"):
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (d,), (d,)
    return shapes


def block_weights(d: int, seed: int) -> dict:
    """Float64 values for every contract parameter: matrices ~ N(0, 1/fan_in), biases ~ N(0, 0.1^2),
    layer-norm weights ~ 1 + N(0, 0.1^2) (not 1 and 0: a block that skipped one would not notice)."""
    from fmspec.suites import strategies as ss

    out = {}
    for i, (name, shape) in enumerate(sorted(block_shapes(d).items())):
        x = ss.randn(shape, seed + i)
        out[name] = x / math.sqrt(shape[1]) if len(shape) == 2 else (1 + 0.1 * x if name.startswith("ln") and
                                                                       name.endswith("weight") else 0.1 * x)
    return out


def block_oracle(x: torch.Tensor, w: dict, n_heads: int, causal: bool) -> torch.Tensor:
    """The pre-norm block written out with torch's own operations, in float64::

        x = x + W_o SDPA(LN_1(x) W_q^T, LN_1(x) W_k^T, LN_1(x) W_v^T) (+ biases), heads of d / H
        x = x + W_proj GELU(W_fc LN_2(x))
    """
    import torch.nn.functional as F

    B, T, d = x.shape
    H = n_heads

    def lin(name, h):
        return h @ w[f"{name}.weight"].T + w[f"{name}.bias"]

    h = F.layer_norm(x, (d,), w["ln1.weight"], w["ln1.bias"], gpt.LN_EPS)
    q, k, v = (lin(n, h).view(B, T, H, d // H).transpose(1, 2) for n in "qkv")  # (B, H, T, Dh)
    a = F.scaled_dot_product_attention(q, k, v, is_causal=causal).transpose(1, 2).reshape(B, T, d)
    x = x + lin("o", a)
    h = F.layer_norm(x, (d,), w["ln2.weight"], w["ln2.bias"], gpt.LN_EPS)
    return x + lin("proj", F.gelu(lin("fc", h)))
