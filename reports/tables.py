"""Results files as pandas tables: the one data model the HTML report, the gate and the exports share.

One *entry* is a candidate in one results file (a run). Several files of different candidates, or of
one candidate over time, give one entry each; an entry's label is the candidate's name, made unique
with the run's start time (then a number) where the same name comes from several files.

Tables (all sorted, so that everything rendered from them is byte-stable):

- ``tests``: one row per test record, with the entry it belongs to; benchmark tests (``bench_*.py``)
  are flagged ``bench`` and left out of conformance counts;
- ``matrix()``: outcome counts per entry and component, and the cell's status;
- ``benchmarks``: one row per benchmark record: median time, throughput, fraction of the device ceiling,
  speedups (against the reference measured in the same run, and the benchmark's own ``speedup_vs_*``),
  any other numeric extra_info or metrics; only entries whose component is conformant are *shown*
  (``conformant`` column), and every row carries the run's device so that devices are never mixed.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
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
# extra_info keys the report knows, in the order it shows them, with their headings
KNOWN_METRICS = {
    "tflops": "TFLOP/s",
    "gbps": "GB/s",
    "ceiling_fraction": "% of ceiling",
}
MEMORY_KEYS = ("peak_memory_bytes", "peak_bytes", "memory_bytes", "saved_bytes", "peak_memory")
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


def outcome_counts(rows: pd.DataFrame) -> dict:
    counts = rows["outcome"].value_counts()
    return {o: int(counts.get(o, 0)) for o in OUTCOMES if counts.get(o, 0)}


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
        runs_of: dict[str, list[Run]] = {}
        for run, name, _ in found:
            runs_of.setdefault(name, []).append(run)

        def stamp(run: Run) -> str:
            return str(run.doc.get("started") or "")[:16].replace("T", " ")

        entries, used = [], set()
        for run, name, ident in found:
            label = name
            if len(runs_of[name]) > 1:  # one candidate in several files: tell them apart by start time, else file
                stamps = [stamp(r) for r in runs_of[name]]
                unique = all(stamps) and len(set(stamps)) == len(stamps)
                label = f"{name} @ {stamp(run) if unique else run.path.stem}"
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
                             "total": sum(counts.values()), "state": cell_state(counts)})
        return pd.DataFrame(rows, columns=["entry", "component", *OUTCOMES, "total", "state"])

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
        """Numeric benchmark columns to show, known ones first: throughput, ceiling, speedups, the rest."""
        df = self.benchmarks
        fixed = set(["entry", "candidate", "run", "device", "component", "benchmark", "shape", "params", "nodeid",
                     "median_ms", "rounds", "conformant"])
        extra = [c for c in df.columns if c not in fixed]
        known = [k for k in KNOWN_METRICS if k in extra]
        speed = sorted(c for c in extra if c.startswith("speedup_vs_"))
        speed = (["speedup_vs_reference"] if "speedup_vs_reference" in speed else []) + \
            [c for c in speed if c != "speedup_vs_reference"]
        memory = [k for k in MEMORY_KEYS if k in extra]
        return known + speed + memory

    def detail_columns(self) -> list[str]:
        """The other numeric benchmark fields (flops, bytes, ...): shown on hover, kept in the raw data."""
        shown = set(self.metric_columns())
        fixed = {"entry", "candidate", "run", "device", "component", "benchmark", "shape", "params", "nodeid",
                 "median_ms", "rounds", "conformant"}
        return sorted(c for c in self.benchmarks.columns if c not in fixed and c not in shown)

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


def _bench_name(b: dict) -> str:
    name = str(b.get("name") or b.get("nodeid") or "?")
    return name.split("[")[0]


def _bench_key(b: dict) -> tuple:
    return (b["component"], _bench_name(b), tuple(sorted(b["params"].items())))


def metric_label(key: str) -> str:
    if key in KNOWN_METRICS:
        return KNOWN_METRICS[key]
    if key.startswith("speedup_vs_"):
        return "× " + key.removeprefix("speedup_vs_").replace("_", " ")
    return key.replace("_", " ")


def format_number(value, key: str = "") -> str:
    """Numbers as the tables show them: 3 significant digits, fractions of the ceiling as percent."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if key == "ceiling_fraction":
        return f"{100 * value:.1f}%"
    if key.startswith("speedup_vs_"):
        return f"{value:.2f}×"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.3g}"
