"""Results files as pandas tables: the one data model the HTML report, the gate and the exports share.

One *entry* is a candidate in one results file (a run). Several files of different candidates, or of
one candidate over time, give one entry each; an entry's label is the candidate's name, made unique
with the run's start time (then a number) where the same name comes from several files. Candidates of
the same name loaded from different paths (two submissions both called ``mine``) are different
candidates, labelled by the shortest ends of their paths that differ (``alice/mine``, ``bob/mine``).

Tables (all sorted, so that everything rendered from them is byte-stable):

- ``tests``: one row per test record, with the entry it belongs to; benchmark tests (``bench_*.py``)
  are flagged ``bench`` and left out of conformance counts. A test recorded *unsupported* that needs a
  feature the entry lacks altogether (no test of it ran, one at least is missing) is *missing*: "3
  unsupported" says nothing of a candidate that has no flash at all (``recorded`` keeps the file's outcome);
- ``matrix()``: outcome counts per entry and component, and the cell's status; plain skips (no CUDA,
  a library not installed) are counted apart, never in a cell's denominator;
- ``benchmarks``: one row per benchmark record: median time, throughput, fraction of the device ceiling,
  speedups (against the reference measured in the same run, and the benchmark's own ``speedup_vs_*``),
  any other numeric extra_info or metrics; only entries whose component is conformant are *shown*
  (``conformant`` column), and every row carries the run's device so that devices are never mixed.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
import numbers
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from fmspec.reports import schema

OUTCOMES = ("passed", "failed", "error", "missing", "unsupported", "skipped", "xfailed", "xpassed")
FAILING = ("failed", "error", "xpassed")
# a cell's states, worst first: something failed; nothing passed, features missing or unsupported; some
# passed and some missing; all passed; no tests
STATES = ("fail", "missing", "gaps", "pass", "none")
# outcomes that are neither a result nor a gap of the candidate's (the test could not run here: no CUDA
# device, an optional library not installed): shown beside a cell, never in its denominator
SET_APART = ("skipped",)
# what benchmarks record (extra_info, or the test's metrics), by kind; shown in this order. Throughput:
# these keys, then any other ``*_per_s``; the first one a benchmark has is its plot's y axis.
THROUGHPUT = {
    "tflops": "TFLOP/s",
    "gflop_per_s": "GFLOP/s",
    "gbps": "GB/s",
    "mb_per_s": "MB/s",
    "tokens_per_s": "tokens/s",
}
# fractions of a measured device ceiling, shown as percent
CEILINGS = {
    "ceiling_fraction": "% of ceiling",
    "fraction_of_matmul_ceiling": "% of matmul ceiling",
    "fraction_of_copy_ceiling": "% of copy ceiling",
}
KNOWN_METRICS = {**THROUGHPUT, **CEILINGS}
# time per unit of work (``us_per_step``: lower is better), and ratios of two times the benchmark measured
# (``ratio_to_f``: grad's time over f's); shown after throughput
_UNIT_TIME = re.compile(r"^(ns|us|ms|s)_per_([a-z0-9_]+)$")
_UNITS = {"ns": "ns", "us": "µs", "ms": "ms", "s": "s"}
# memory a benchmark measured or modelled, in bytes (``*_bytes``, ``peak_memory``) or in MB (``*_mb``,
# ``*_mb_<dtype>``: 10^6 bytes); shown in binary units, plotted in MiB
MEMORY_KEYS = ("peak_memory_bytes", "peak_bytes", "memory_bytes", "saved_bytes", "peak_memory")
_MEMORY = re.compile(r"(?:^|_)(?:peak|memory|saved|largest|allocated|activation)s?(?:_|$)")
_MEGABYTES = re.compile(r"_mb(?:_[a-z0-9]+)?$")
REFERENCE = "reference"
# a qualitative palette readable by colour-blind viewers (Okabe-Ito, its yellow darkened for white paper, then tab10)
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999933", "#000000",
           "#8c564b", "#7f7f7f", "#bcbd22", "#17becf", "#9467bd", "#d62728", "#2ca02c", "#1f77b4")


@dataclass
class Run:
    """One results file as loaded by :func:`fmspec.reports.schema.load`."""

    path: Path
    doc: dict
    index: int
    sha256: str

    @property
    def device(self) -> str:
        return str(self.doc["environment"].get("device") or "unknown device")

    @property
    def partial(self) -> bool:
        return bool(self.doc.get("partial"))

    @property
    def integrity(self) -> str:
        """What :func:`fmspec.integrity.verify` said of the file: valid, edited, unsigned or other key."""
        return str(self.doc.get("integrity") or "unsigned")


@dataclass
class Entry:
    """A candidate in a run: a row of the matrix, a series in the plots."""

    label: str
    candidate: str
    run: Run
    identity: dict = field(default_factory=dict)
    colour: str = "#000000"
    anchor: str = ""


def load_runs(paths: list[str | Path]) -> list[Run]:
    """Load every results file (raises :class:`schema.ResultsError` on the first unusable one)."""
    runs = []
    for i, p in enumerate(paths):
        doc = schema.load(p)
        digest = hashlib.sha256(Path(p).read_bytes()).hexdigest()
        runs.append(Run(Path(p), doc, i, digest))
    return runs


def source_path(identity: dict) -> str | None:
    """Where a candidate was loaded from, when it was a path (``"path /x/mine"`` -> ``"/x/mine"``), else None."""
    source = str(identity.get("source") or "")
    return source[len("path "):] if source.startswith("path ") else None


def short_path(path: str, paths: list[str]) -> str:
    """The fewest trailing parts of ``path`` that no other of ``paths`` ends with:
    ``/subs/alice/mine`` among ``/subs/bob/mine`` -> ``alice/mine``."""
    parts = path.replace("\\", "/").rstrip("/").split("/")
    others = [p.replace("\\", "/").rstrip("/").split("/") for p in paths if p != path]
    for n in range(1, len(parts) + 1):
        tail = parts[-n:]
        if not any(o[-n:] == tail for o in others):
            return "/".join(tail)
    return path


def colour(i: int) -> str:
    """The i-th entry's colour: the palette, then hues spread by the golden angle (many submissions)."""
    if i < len(PALETTE):
        return PALETTE[i]
    hue = (i * 0.618033988749895) % 1.0
    r, g, b = colorsys.hls_to_rgb(hue, 0.42, 0.65)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def slug(text: str) -> str:
    """An id for an HTML anchor: ``"mine @ 2024-01-01"`` -> ``"mine-2024-01-01"``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "x"


def is_bench(nodeid: str) -> bool:
    return str(nodeid).split("::")[0].rpartition("/")[2].startswith("bench_")


def _absent_is_missing(df: pd.DataFrame) -> None:
    """Unsupported tests of a feature the entry lacks altogether become missing, with the reason of the
    feature's missing tests (one line per function in the report, one count in the matrix)."""
    if df.empty:
        return
    lacked: dict[tuple[str, str], str] = {}  # (entry, feature) -> the reason its missing tests give
    ran: set[tuple[str, str]] = set()
    for r in df.itertuples():
        if r.outcome == "missing":
            f = lacked_feature(r.message, r.features)
            if f is not None:
                lacked.setdefault((r.entry, f), r.message)
        elif r.outcome in ("passed",) + FAILING:
            ran.update((r.entry, f) for f in r.features)
    absent = {k: v for k, v in lacked.items() if k not in ran}
    if not absent:
        return
    for i, r in zip(df.index, df.itertuples()):
        if r.outcome != "unsupported":
            continue
        why = next((absent[(r.entry, f)] for f in r.features if (r.entry, f) in absent), None)
        if why is not None:
            df.at[i, "outcome"] = "missing"
            df.at[i, "message"] = why


def outcome_counts(rows: pd.DataFrame) -> dict:
    counts = rows["outcome"].value_counts()
    return {o: int(counts.get(o, 0)) for o in OUTCOMES if counts.get(o, 0)}


def counted(counts: dict) -> int:
    """A cell's denominator: every test but plain skips (:data:`SET_APART`)."""
    return sum(n for o, n in counts.items() if o not in SET_APART)


def set_apart(counts: dict) -> int:
    return sum(counts.get(o, 0) for o in SET_APART)


_HAS_NO = re.compile(r"has no ([A-Za-z_][\w.]*)")
_NOT_IMPLEMENTED = re.compile(r"^NotImplementedError: ([A-Za-z_][\w.]*)")


def lacked_feature(message: str | None, features) -> str | None:
    """The feature a missing test lacked, read from its reason (normalised by :func:`schema.reason`):
    ``candidate 'x' has no posenc.sinusoidal`` -> ``posenc.sinusoidal``; ``NotImplementedError:
    posenc.sinusoidal`` -> ``posenc.sinusoidal`` when the test needs it (a candidate's own message,
    ``NotImplementedError: TODO``, names nothing) -> None."""
    text = str(message or "")
    m = _HAS_NO.search(text)
    if m:
        return m.group(1)
    m = _NOT_IMPLEMENTED.match(text)
    if m and m.group(1).rstrip(".") in set(features or ()):
        return m.group(1).rstrip(".")
    return None


def cell_state(counts: dict) -> str:
    """One of :data:`STATES`: ``{"passed": 3, "missing": 1}`` -> ``"gaps"``, ``{"failed": 1, ...}`` -> ``"fail"``."""
    if any(counts.get(o) for o in FAILING):
        return "fail"
    if counts.get("missing") or counts.get("unsupported"):
        return "gaps" if counts.get("passed") else "missing"
    return "pass" if counts.get("passed") else "none"


def geomean(values) -> float | None:
    vals = [float(v) for v in values if v is not None and isinstance(v, (int, float)) and math.isfinite(v) and v > 0]
    if not vals:
        return None
    return math.exp(sum(math.log(v) for v in vals) / len(vals))


def _number(value) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    return None


def headline(message: str | None) -> str:
    """The line of a failure message that says what went wrong: pytest's first ``E`` line, else the first line."""
    if not message:
        return ""
    lines = [ln for ln in str(message).splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith("E   "):
            return ln[1:].strip()[:300]
    return lines[0].strip()[:300] if lines else ""


def natural_key(params: dict) -> str:
    """A sort key for a shape: numbers compare as numbers (T=512 before T=1024)."""
    parts = []
    for k, v in sorted(params.items()):
        v = str(v)
        parts.append(k + "=" + re.sub(r"\d+", lambda m: m.group(0).zfill(12), v))
    return "|".join(parts)


def shape_text(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items())) or "-"


class Results:
    """Any number of loaded runs as one comparison."""

    def __init__(self, runs: list[Run]):
        self.runs = runs
        self.entries = self._entries(runs)
        self.by_key = {(e.run.index, e.candidate): e for e in self.entries}
        self.tests = self._tests()
        self.benchmarks = self._benchmarks()

    # ------------------------------------------------------------------------------------------ entries
    @staticmethod
    def _entries(runs: list[Run]) -> list[Entry]:
        found: list[tuple[Run, str, dict]] = []
        for run in runs:
            names = [c.get("name") for c in run.doc["candidates"] if isinstance(c, dict) and c.get("name")]
            # candidates seen only in records (a truncated header) count too
            for rec in run.doc["tests"] + run.doc["benchmarks"]:
                if rec.get("candidate") and rec["candidate"] not in names:
                    names.append(rec["candidate"])
            idents = {c.get("name"): c for c in run.doc["candidates"] if isinstance(c, dict)}
            for name in names:
                found.append((run, str(name), idents.get(name, {"name": name})))
        # one candidate is a name and, where it was loaded from a path, that path: two submissions both
        # called "mine" are two candidates, labelled by the ends of their paths that differ
        runs_of: dict[tuple[str, str | None], list[Run]] = {}
        paths_of: dict[str, set] = {}
        for run, name, ident in found:
            runs_of.setdefault((name, source_path(ident)), []).append(run)
            paths_of.setdefault(name, set()).add(source_path(ident))

        def stamp(run: Run) -> str:
            return str(run.doc.get("started") or "")[:16].replace("T", " ")

        entries, used = [], set()
        for run, name, ident in found:
            path = source_path(ident)
            label = name
            if len(paths_of[name]) > 1 and path is not None:
                label = short_path(path, [p for p in paths_of[name] if p is not None])
            runs = runs_of[(name, path)]
            if len(runs) > 1 or (path is None and len(paths_of[name]) > 1):
                # one candidate in several files: tell them apart by start time, else file
                stamps = [stamp(r) for r in runs]
                unique = all(stamps) and len(set(stamps)) == len(stamps)
                label = f"{label} @ {stamp(run) if unique else run.path.stem}"
            base, k = label, 2
            while label in used:
                label, k = f"{base} #{k}", k + 1
            used.add(label)
            entries.append(Entry(label, name, run, ident))
        for i, e in enumerate(entries):  # one colour per entry, the same in every table and plot
            e.colour = colour(i)
            e.anchor = "c-" + slug(e.label)
        return entries

    def entry(self, run: Run, candidate: str | None) -> Entry | None:
        return self.by_key.get((run.index, candidate))

    # -------------------------------------------------------------------------------------------- tests
    def _tests(self) -> pd.DataFrame:
        rows = []
        for run in self.runs:
            for t in run.doc["tests"]:
                e = self.entry(run, t["candidate"])
                if e is None:
                    continue
                rows.append({
                    "entry": e.label, "candidate": e.candidate, "run": run.index,
                    "component": str(t["component"] or "-"), "property": str(t["property"]),
                    "nodeid": str(t["nodeid"]), "params": dict(t["params"] or {}),
                    "features": list(t["features"] or []), "outcome": str(t["outcome"]),
                    "message": t["message"], "example": t["example"], "reproduce": t["reproduce"],
                    "duration": float(t["duration"] or 0.0), "metrics": t["metrics"],
                    "bench": is_bench(t["nodeid"]),
                    "flags": [str(f) for f in (t.get("flags") or [])],
                })
        cols = ["entry", "candidate", "run", "component", "property", "nodeid", "params", "features", "outcome",
                "message", "example", "reproduce", "duration", "metrics", "bench", "flags"]
        df = pd.DataFrame(rows, columns=cols)
        for c in ("message", "example", "reproduce", "metrics"):  # None stays None (pandas would make it NaN)
            df[c] = df[c].astype(object).where(df[c].notna(), None)
        df["bench"] = df["bench"].astype(bool)  # also when empty: a mask, never a list of column names
        df["duration"] = df["duration"].astype(float)
        df["recorded"] = df["outcome"]
        _absent_is_missing(df)
        order = {e.label: i for i, e in enumerate(self.entries)}
        df["_order"] = df["entry"].map(order)
        return df.sort_values(["_order", "component", "nodeid"], kind="stable").drop(columns="_order").reset_index(drop=True)

    @property
    def conformance(self) -> pd.DataFrame:
        return self.tests[~self.tests["bench"]]

    @property
    def components(self) -> list[str]:
        return sorted(set(self.tests["component"]) | set(self.benchmarks["component"].dropna()))

    def counts(self, entry: Entry, component: str) -> dict:
        t = self.conformance
        return outcome_counts(t[(t["entry"] == entry.label) & (t["component"] == component)])

    def matrix(self) -> pd.DataFrame:
        """One row per (entry, component) with outcome counts and the cell's state."""
        rows = []
        for e in self.entries:
            for comp in self.components:
                counts = self.counts(e, comp)
                rows.append({"entry": e.label, "component": comp, **{o: counts.get(o, 0) for o in OUTCOMES},
                             "total": sum(counts.values()), "counted": counted(counts),
                             "apart": set_apart(counts), "state": cell_state(counts)})
        return pd.DataFrame(rows, columns=["entry", "component", *OUTCOMES, "total", "counted", "apart", "state"])

    def conformant(self, entry: Entry, component: str) -> bool:
        """Speed counts only here: tests of the component ran, and none failed."""
        return cell_state(self.counts(entry, component)) in ("pass", "gaps")

    # --------------------------------------------------------------------------------------- benchmarks
    def _benchmarks(self) -> pd.DataFrame:
        rows = []
        for run in self.runs:
            recs = run.doc["benchmarks"]
            # the reference's median per benchmark and shape, from the same run: speedups are ratios
            ref_median = {}
            for b in recs:
                if b["candidate"] == REFERENCE and _number(b["stats"].get("median")):
                    ref_median[_bench_key(b)] = b["stats"]["median"]
            for b in recs:
                e = self.entry(run, b["candidate"])
                if e is None:
                    continue
                median = _number(b["stats"].get("median"))
                extra = {**(b.get("metrics") or {}), **b["extra_info"]}
                row = {
                    "entry": e.label, "candidate": e.candidate, "run": run.index, "device": run.device,
                    "component": str(b["component"] or "-"), "benchmark": _bench_name(b),
                    "shape": shape_text(b["params"]), "params": dict(b["params"]), "nodeid": b["nodeid"],
                    "median_ms": median * 1e3 if median is not None else None,
                    "rounds": b["stats"].get("rounds"),
                }
                ref = ref_median.get(_bench_key(b))
                if median and ref and b["candidate"] != REFERENCE:
                    row["speedup_vs_reference"] = ref / median
                elif b["candidate"] == REFERENCE and median:
                    row["speedup_vs_reference"] = 1.0
                for k, v in sorted(extra.items()):
                    num = _number(v)
                    if num is not None and not (k == "speedup_vs_reference" and "speedup_vs_reference" in row):
                        row[k] = num
                rows.append(row)
        base = ["entry", "candidate", "run", "device", "component", "benchmark", "shape", "params", "nodeid",
                "median_ms", "rounds"]
        df = pd.DataFrame(rows)
        if df.empty:
            return pd.DataFrame(columns=base + ["conformant"])
        df["conformant"] = [self.conformant(self._entry_by_label(r.entry), r.component) for r in df.itertuples()]
        order = {e.label: i for i, e in enumerate(self.entries)}
        df["_order"] = df["entry"].map(order)
        df["_shape"] = df["params"].map(natural_key)
        df = df.sort_values(["device", "component", "benchmark", "_shape", "_order"], kind="stable")
        df = df.drop(columns="_shape")
        return df.drop(columns="_order").reset_index(drop=True)

    def _entry_by_label(self, label: str) -> Entry:
        return next(e for e in self.entries if e.label == label)

    def metric_columns(self) -> list[str]:
        """Numeric benchmark columns to show: throughput, fraction of the ceiling, speedups, memory."""
        extra = [c for c in self.benchmarks.columns if c not in _FIXED]
        return order_metrics(extra)

    def detail_columns(self) -> list[str]:
        """The other numeric benchmark fields (flops, bytes, ...): shown on hover, kept in the raw data."""
        shown = set(self.metric_columns())
        return sorted(c for c in self.benchmarks.columns if c not in _FIXED and c not in shown)

    def speedups(self, component: str | None = None, conformant_only: bool = True) -> pd.DataFrame:
        """Geometric mean of every ``speedup_vs_*`` per (device, component, entry)."""
        df = self.benchmarks
        if conformant_only and not df.empty:
            df = df[df["conformant"]]
        if component is not None:
            df = df[df["component"] == component]
        cols = [c for c in self.metric_columns() if c.startswith("speedup_vs_")]
        rows = []
        for (device, comp, entry), g in df.groupby(["device", "component", "entry"], sort=True):
            row = {"device": device, "component": comp, "entry": entry, "benchmarks": len(g)}
            for c in cols:
                row[c] = geomean(g[c].tolist()) if c in g else None
            rows.append(row)
        return pd.DataFrame(rows, columns=["device", "component", "entry", "benchmarks", *cols])


_FIXED = {"entry", "candidate", "run", "device", "component", "benchmark", "shape", "params", "nodeid", "median_ms",
          "rounds", "conformant"}


def metric_kind(key: str) -> str | None:
    """``throughput``, ``unit time``, ``ceiling``, ``speedup``, ``ratio``, ``memory``, or None (a detail:
    flops, bytes, seconds, ...)."""
    if _UNIT_TIME.match(key):
        return "unit time"
    if key in THROUGHPUT or key.endswith("_per_s"):
        return "throughput"
    if key.startswith("ratio_to_"):
        return "ratio"
    if key in CEILINGS or (key.startswith("fraction_of_") and key.endswith("_ceiling")):
        return "ceiling"
    if key.startswith("speedup_vs_"):
        return "speedup"
    if key in MEMORY_KEYS or (_MEMORY.search(key) and (key.endswith("_bytes") or _MEGABYTES.search(key))):
        return "memory"
    return None


def order_metrics(keys) -> list[str]:
    """The keys worth a column, in the order shown: ``["speedup_vs_x", "mb_per_s", "flops", "tflops"]`` ->
    ``["tflops", "mb_per_s", "speedup_vs_x"]`` (known throughput first, the reference first of speedups)."""
    keys = list(dict.fromkeys(keys))
    by_kind: dict[str, list[str]] = {}
    for k in keys:
        kind = metric_kind(k)
        if kind:
            by_kind.setdefault(kind, []).append(k)

    def known_first(found: list[str], known) -> list[str]:
        return [k for k in known if k in found] + sorted(k for k in found if k not in known)

    return (known_first(by_kind.get("throughput", []), THROUGHPUT)
            + sorted(by_kind.get("unit time", []))
            + known_first(by_kind.get("ceiling", []), CEILINGS)
            + known_first(by_kind.get("speedup", []), ("speedup_vs_reference",))
            + sorted(by_kind.get("ratio", []))
            + known_first(by_kind.get("memory", []), MEMORY_KEYS))


def memory_bytes(key: str, value: float) -> float:
    """A memory field in bytes: ``*_mb`` fields are megabytes (10^6 bytes), the others bytes."""
    return value * 1e6 if _MEGABYTES.search(key) else value


def format_bytes(n: float) -> str:
    """``1536`` -> ``1.5 KiB``, ``3 * 2**30`` -> ``3 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} B" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} TiB"


def _bench_name(b: dict) -> str:
    name = str(b.get("name") or b.get("nodeid") or "?")
    return name.split("[")[0]


def _bench_key(b: dict) -> tuple:
    return (b["component"], _bench_name(b), tuple(sorted(b["params"].items())))


def metric_label(key: str) -> str:
    """A column heading: ``tflops`` -> ``TFLOP/s``, ``speedup_vs_sdpa_flash`` -> ``× sdpa flash``,
    ``tokens_per_s`` -> ``tokens/s``, ``peak_bytes`` -> ``peak memory``."""
    if key in KNOWN_METRICS:
        return KNOWN_METRICS[key]
    if key.startswith("speedup_vs_"):
        return "× " + key.removeprefix("speedup_vs_").replace("_", " ")
    m = _UNIT_TIME.match(key)
    if m:
        return f"{_UNITS[m.group(1)]}/{m.group(2).replace('_', ' ')}"
    if key.endswith("_per_s"):
        return key.removesuffix("_per_s").replace("_", " ") + "/s"
    if key.startswith("ratio_to_"):
        return "time ÷ " + key.removeprefix("ratio_to_").replace("_", " ")
    if metric_kind(key) == "memory":  # peak_memory_bytes -> peak memory, largest_mb_float32 -> largest memory (float32)
        m = re.match(r"(.*?)_(?:bytes|mb)(?:_([a-z0-9]+))?$", key)
        base, dtype = (m.group(1), m.group(2)) if m else (key, None)
        label = base.replace("_", " ")
        return (label if "memory" in label else label + " memory") + (f" ({dtype})" if dtype else "")
    return key.replace("_", " ")


def format_number(value, key: str = "") -> str:
    """Numbers as the tables show them: 3 significant digits (thousands separated from 10^4), fractions of a
    ceiling as percent, speedups as ×, memory in binary units (``peak_bytes``, 3 * 2**20 -> ``3 MiB``)."""
    if isinstance(value, (str, bool)):
        return str(value)
    if not isinstance(value, numbers.Real) or not math.isfinite(value):
        return "–"
    value = float(value)
    kind = metric_kind(key) if key else None
    if kind == "ceiling":
        return f"{100 * value:.1f}%"
    if kind in ("speedup", "ratio"):
        return f"{value:.2f}×"
    if kind == "memory":
        return format_bytes(memory_bytes(key, value))
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
