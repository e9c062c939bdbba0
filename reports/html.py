"""The comparative HTML report: ``fmspec report RESULTS... -o report.html``.

One self-contained file: inline CSS, inline SVG plots (matplotlib's SVG backend), a few lines of inline
JavaScript for sorting tables and downloading the embedded raw data, and a Content-Security-Policy that
forbids every external load (``default-src 'none'``; the script is allowed by its hash). It is rendered
only from the results files (the tables of :mod:`fmspec.reports.tables`), and is byte-stable: the same inputs
give the same bytes (no build time in it, every table sorted, plot ids salted deterministically).

Sections: the conformance matrix (entry × component, counts and colour, skips counted apart; each cell
links to its details), failures (property, message, hypothesis's minimal example, the command that
reproduces it), speed (one block per device, never mixed: a geometric-mean summary, per-benchmark tables
of what the benchmarks recorded (throughput, memory, ratios) and plots of throughput and memory, on log
axes where values span decades; only conformant cells are timed), measurements that tests recorded,
provenance of every entry, and the raw data.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import math
import re
from pathlib import Path

import jinja2

from fmspec import integrity
from fmspec.reports import tables as tb

TEMPLATES = Path(__file__).resolve().parent / "templates"
MAX_PLOTS_PER_BENCHMARK = 4
# parameter names taken as the x axis of a plot, in order of preference
X_PREFERRED = ("T", "seq_len", "seqlen", "S", "N", "n", "tokens", "size", "n_ctx", "L")

SCRIPT = """\
(function () {
  function key(cell) {
    var s = cell.getAttribute('data-sort');
    if (s === null) s = cell.textContent.trim();
    var n = parseFloat(s);
    return isNaN(n) || !/^[-+]?[0-9.]/.test(s) ? [1, s.toLowerCase()] : [0, n];
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    table.setAttribute('data-sortable', 'ready');
    table.querySelectorAll('thead th').forEach(function (th, col) {
      th.setAttribute('tabindex', '0');
      function sort() {
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        var dir = th.getAttribute('aria-sort') === 'ascending' ? -1 : 1;
        table.querySelectorAll('thead th').forEach(function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', dir === 1 ? 'ascending' : 'descending');
        rows.sort(function (a, b) {
          var x = key(a.cells[col]), y = key(b.cells[col]);
          if (x[0] !== y[0]) return x[0] - y[0];
          return (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0) * dir;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      }
      th.addEventListener('click', sort);
      th.addEventListener('keydown', function (ev) { if (ev.key === 'Enter') sort(); });
    });
  });
  var button = document.getElementById('download-raw');
  if (button) button.addEventListener('click', function () {
    var b64 = document.getElementById('fmspec-raw').textContent.trim(), bin = atob(b64);
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    var url = URL.createObjectURL(new Blob([bytes], {type: 'application/gzip'}));
    var a = document.createElement('a');
    a.href = url; a.download = 'fmspec-results.json.gz';
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
  });
})();
"""


def csp(script: str) -> str:
    """No request may leave the page: nothing loads but the inline script (by hash), styles and data: images."""
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return ("default-src 'none'; script-src 'sha256-" + digest + "'; style-src 'unsafe-inline'; img-src data:; "
            "base-uri 'none'; form-action 'none'")


def build(paths: list[str | Path], title: str | None = None) -> str:
    """Load the results files and render the report (raises ``schema.ResultsError`` on bad input)."""
    runs = tb.load_runs(paths)
    return render(tb.Results(runs), title=title)


def render(results: tb.Results, title: str | None = None) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters["num"] = tb.format_number
    env.filters["slug"] = tb.slug
    env.globals["zip"] = zip
    env.filters["first_line"] = tb.headline
    context = _context(results, title)
    html = env.get_template("report.html.j2").render(**context)
    return html


# --------------------------------------------------------------------------------------------- context
def _context(res: tb.Results, title: str | None) -> dict:
    comps = res.components
    matrix = res.matrix()
    cells = {(r.entry, r.component): r for r in matrix.itertuples()}
    entries = []
    for i, e in enumerate(res.entries):
        row = []
        for comp in comps:
            c = cells[(e.label, comp)]
            counts = {o: getattr(c, o) for o in tb.OUTCOMES if getattr(c, o)}
            row.append({"component": comp, "state": c.state, "counts": counts, "total": c.total,
                        "counted": c.counted, "apart": c.apart,
                        "passed": c.passed, "anchor": f"m-{e.anchor}-{tb.slug(comp)}",
                        "sort": f"{(c.passed / c.counted) if c.counted else -1:.6f}"})
        tot = {o: int(matrix[matrix["entry"] == e.label][o].sum()) for o in tb.OUTCOMES}
        entries.append({"e": e, "cells": row, "totals": {o: n for o, n in tot.items() if n},
                        "total": sum(tot.values()), "counted": tb.counted(tot), "apart": tb.set_apart(tot),
                        "passed": tot["passed"]})
    return {
        "title": title or _title(res),
        "script": SCRIPT,
        "csp": csp(SCRIPT),
        "components": comps,
        "entries": entries,
        "outcomes": tb.OUTCOMES,
        "notes": _notes(res),
        "failures": _failures(res),
        "details": _details(res, comps, cells),
        "speed": _speed(res),
        "measurements": _measurements(res),
        "provenance": _provenance(res),
        "raw": _raw(res),
    }


def _title(res: tb.Results) -> str:
    names = list(dict.fromkeys(e.candidate for e in res.entries))
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    return f"fmspec report: {shown or 'no candidates'}"


def _notes(res: tb.Results) -> list[str]:
    notes = []
    for run in res.runs:
        for note in run.doc.get("notes", []):
            notes.append(f"{run.path.name}: {note} (partial: counts may be incomplete)")
        if run.integrity == integrity.EDITED:
            notes.append(f"{run.path.name}: edited after the run or cut short: its digest does not match its contents, "
                         f"so nothing in it can be trusted")
    devices = sorted({run.device for run in res.runs})
    if len(devices) > 1:
        notes.append(f"results come from {len(devices)} devices ({', '.join(devices)}): speed is compared within "
                     "each device only")
    return notes


def _failures(res: tb.Results) -> list[dict]:
    t = res.tests
    out = []
    for e in res.entries:
        rows = t[(t["entry"] == e.label) & t["outcome"].isin(tb.FAILING)]
        items = []
        for n, r in enumerate(rows.itertuples(), 1):
            items.append({"anchor": f"f-{e.anchor}-{n}", "component": r.component, "property": r.property,
                          "params": tb.shape_text(r.params) if r.params else "", "outcome": r.outcome,
                          "nodeid": r.nodeid, "message": r.message or "", "example": r.example or "",
                          "reproduce": r.reproduce or "", "features": ", ".join(r.features),
                          "flags": list(r.flags)})
        if items:
            out.append({"e": e, "tests": items})
    return out


def _details(res: tb.Results, comps: list[str], cells: dict) -> list[dict]:
    """Per matrix cell: every test that did not pass, one line each; passed tests grouped by property."""
    t = res.conformance
    fail_anchor = {}
    for group in _failures(res):
        for item in group["tests"]:
            fail_anchor[(group["e"].label, item["nodeid"])] = item["anchor"]
    out = []
    for e in res.entries:
        for comp in comps:
            rows = t[(t["entry"] == e.label) & (t["component"] == comp)]
            if rows.empty:
                continue
            passed = rows[rows["outcome"] == "passed"]["property"].value_counts()
            failing = [{"property": r.property, "params": tb.shape_text(r.params) if r.params else "",
                        "outcome": r.outcome, "message": r.message or "", "flags": list(r.flags),
                        "link": fail_anchor.get((e.label, r.nodeid))}
                       for r in rows[rows["outcome"].isin(tb.FAILING)].itertuples()]
            # missing, unsupported, skipped: one line per reason, with the tests it stopped
            grouped: dict[tuple[str, str], dict[str, int]] = {}
            for r in rows[~rows["outcome"].isin(tb.FAILING + ("passed",))].itertuples():
                props = grouped.setdefault((r.outcome, tb.headline(r.message)), {})
                props[r.property] = props.get(r.property, 0) + 1
            others = [{"outcome": o, "reason": why, "tests": sorted(props.items())}
                      for (o, why), props in sorted(grouped.items())]
            c = cells[(e.label, comp)]
            out.append({"e": e, "component": comp, "anchor": f"m-{e.anchor}-{tb.slug(comp)}", "state": c.state,
                        "passed": sorted(passed.items()), "failing": failing, "others": others,
                        "duration": float(rows["duration"].sum())})
    return out


def _speed(res: tb.Results) -> list[dict]:
    df = res.benchmarks
    if df.empty:
        return []
    metric_cols = res.metric_columns()
    detail_cols = res.detail_columns()
    summary = res.speedups()
    labels = {e.label: e for e in res.entries}
    blocks = []
    for d_i, (device, dev) in enumerate(df.groupby("device", sort=True)):
        hidden = sorted({(r.entry, r.component) for r in dev[~dev["conformant"]].itertuples()},
                        key=lambda x: (x[1], list(labels).index(x[0])))
        shown = dev[dev["conformant"]]
        comps = []
        for comp, g in shown.groupby("component", sort=True):
            cols = [c for c in metric_cols if c in g and g[c].notna().any()]
            rows = []
            for r in g.itertuples():
                rec = r._asdict()
                more = ", ".join(f"{k}={tb.format_number(rec.get(k))}" for k in detail_cols
                                 if rec.get(k) is not None and rec.get(k) == rec.get(k))
                rows.append({"e": labels[r.entry], "benchmark": r.benchmark, "shape": r.shape, "more": more,
                             "median_ms": r.median_ms, "values": [rec.get(c) for c in cols]})
            plots, notes = _plots(g, labels, f"{d_i}-{comp}")
            comps.append({"component": comp, "anchor": f"s{d_i}-{tb.slug(comp)}", "columns": cols,
                          "headings": [tb.metric_label(c) for c in cols], "rows": rows, "plots": plots, "notes": notes})
        sm = summary[summary["device"] == device]
        scols = [c for c in sm.columns if c.startswith("speedup_vs_") and sm[c].notna().any()]
        srows = [{"e": labels[r["entry"]], "component": r["component"], "benchmarks": r["benchmarks"],
                  "values": [r[c] for c in scols]} for _, r in sm.iterrows()]
        blocks.append({"device": device, "anchor": f"d{d_i}", "components": comps, "hidden": hidden,
                       "summary": {"columns": scols, "headings": [tb.metric_label(c) for c in scols], "rows": srows},
                       "entries": [labels[x] for x in dict.fromkeys(dev["entry"])]})
    return blocks


def _x_param(g) -> str | None:
    """The numeric parameter with the most distinct values (preferring sequence-length names), or None."""
    values: dict[str, set] = {}
    for params in g["params"]:
        for k, v in params.items():
            try:
                values.setdefault(k, set()).add(float(v))
            except (TypeError, ValueError):
                values.setdefault(k, set()).add(math.nan)
    numeric = {k: v for k, v in values.items() if len(v) > 1 and not any(math.isnan(x) for x in v)}
    if not numeric:
        return None
    for name in X_PREFERRED:
        if name in numeric:
            return name
    return sorted(numeric, key=lambda k: (-len(numeric[k]), k))[0]


def plot_keys(columns) -> list[str]:
    """What a benchmark's plots show, from the fields it recorded: its throughput (the first of
    :data:`tables.THROUGHPUT` it has, else any ``*_per_s``, else a time per unit such as ``us_per_step``,
    else the median time) and its memory (the first memory field):
    ``["median_ms", "gflop_per_s", "largest_mb_float32", "seconds"]`` -> ``["gflop_per_s", "largest_mb_float32"]``."""
    ordered = tb.order_metrics(columns)
    speed = ([k for k in ordered if tb.metric_kind(k) == "throughput"][:1]
             or [k for k in ordered if tb.metric_kind(k) == "unit time"][:1] or ["median_ms"])
    return speed + [k for k in ordered if tb.metric_kind(k) == "memory"][:1]


def _plots(g, labels: dict, salt: str) -> tuple[list[dict], list[str]]:
    """Throughput and memory (:func:`plot_keys`) against the x parameter, one line per entry; and notes
    for what is left to the table (no card is ever drawn empty)."""
    plots, notes = [], []
    for bench, b in g.groupby("benchmark", sort=True):
        x = _x_param(b)
        if x is None:
            continue
        ys = plot_keys([c for c in b.columns if c == "median_ms" or (c in b and b[c].notna().any())])
        slices: dict[str, list] = {}
        for r in b.itertuples():
            rest = {k: v for k, v in r.params.items() if k != x}
            slices.setdefault(tb.shape_text(rest), []).append(r)
        for s_i, (rest, rows) in enumerate(sorted(slices.items())):
            if s_i >= MAX_PLOTS_PER_BENCHMARK:
                break
            for y in ys:
                series = []
                for label in dict.fromkeys(r.entry for r in rows):
                    pts = sorted((float(r.params[x]), float(getattr(r, y))) for r in rows
                                 if r.entry == label and _finite(getattr(r, y, None)))
                    if pts:
                        series.append((label, labels[label].colour, pts))
                if len({px for _, _, pts in series for px, _ in pts}) < 2:
                    continue  # one shape: nothing to draw a line through (the table has it)
                ylabel = {"median_ms": "median time (ms)"}.get(y, tb.metric_label(y))
                if tb.metric_kind(y) == "memory":
                    series = [(lab, c, [(px, tb.memory_bytes(y, py) / 2**20) for px, py in pts])
                              for lab, c, pts in series]
                    ylabel = f"{tb.metric_label(y)}, MiB"
                caption = f"{bench}: {ylabel} vs {x}" + (f" ({rest})" if rest != "-" else "")
                plots.append({"caption": caption,
                              "svg": _svg(series, x, ylabel, f"fmspec-{salt}-{bench}-{s_i}-{y}")})
        if len(slices) > MAX_PLOTS_PER_BENCHMARK:
            notes.append(f"{bench}: {len(slices) - MAX_PLOTS_PER_BENCHMARK} more shape(s) in the table, not plotted")
    return plots, notes


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def log_scale(values) -> bool:
    """An axis spanning two decades or more is drawn in log scale (sizes 256..8192, MB/s 0.5..400)."""
    vals = [v for v in values if v > 0]
    return len(vals) >= 2 and max(vals) / min(vals) >= 100


def _svg(series: list[tuple[str, str, list]], xlabel: str, ylabel: str, salt: str) -> str:
    """A small line plot as inline SVG markup, deterministic for the same data (salted ids, no date)."""
    import matplotlib
    import matplotlib.ticker
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"svg.hashsalt": salt, "svg.fonttype": "none", "font.size": 9,
                                "font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans"],
                                "axes.spines.top": False, "axes.spines.right": False}):
        fig = Figure(figsize=(5.6, 3.0))
        ax = fig.add_subplot()
        for label, colour, pts in series:
            label = label.replace("$", r"\$")  # names are text, never mathtext
            label = " " + label if label.startswith("_") else label  # matplotlib hides "_names" from legends
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3.5, lw=1.6, color=colour, label=label)
        xs = sorted({p[0] for _, _, pts in series for p in pts})
        if len(xs) >= 2 and xs[0] > 0 and xs[-1] / xs[0] >= 8:  # sizes doubling: log2, ticks at the sizes
            ax.set_xscale("log", base=2)
            ax.set_xticks(xs, [f"{v:g}" for v in xs])
            ax.minorticks_off()
        if log_scale([p[1] for _, _, pts in series for p in pts]):  # decades, labelled 0.1, 1, 10, not 10^k
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, lw=0.4, alpha=0.5)
        ax.legend(fontsize=7, frameon=False, loc="upper left")  # a fixed place: "best" costs a search
        fig.subplots_adjust(left=0.13, right=0.98, bottom=0.16, top=0.97)  # tight_layout is slow
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    return compact_svg(buf.getvalue())


_NUMBER = re.compile(r"(\d+\.\d\d)\d+")
_GEOMETRY = re.compile(r'\b(d|x|y|transform|width|height|viewBox|points)="([^"]*)"')


def compact_svg(text: str) -> str:
    """matplotlib's SVG, smaller: no XML prologue or metadata, geometry to 0.01 pt, no layout whitespace.

    Only geometry attributes are rounded; text (tick labels, legend) is kept as drawn.
    """
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    text = _GEOMETRY.sub(lambda m: m.group(1) + '="' + _NUMBER.sub(r"\1", m.group(2)) + '"', text)
    text = re.sub(r' transform="rotate\(-0 [^"]*\)"', "", text)  # a no-op rotation on every label
    text = re.sub(r'<g id="[^"]*">', "<g>", text)  # group ids: unused, and the same in every plot
    text = re.sub(r"\s*\n\s*", " ", text)
    text = re.sub(r">\s+<", "><", text)
    return text.strip()


def _measurements(res: tb.Results) -> list[dict]:
    """What conformance tests recorded besides pass/fail (``fmspec_metrics``): memory saved, counts, ..."""
    t = res.conformance
    rows = []
    for r in t[t["metrics"].notna()].itertuples():
        if not isinstance(r.metrics, dict) or not r.metrics:
            continue
        rows.append({"e": res._entry_by_label(r.entry), "component": r.component, "property": r.property,
                     "params": tb.shape_text(r.params) if r.params else "",
                     "metrics": [(k, v if isinstance(v, str) else json.dumps(v, sort_keys=True))
                                 for k, v in sorted(r.metrics.items())]})
    return rows


def _provenance(res: tb.Results) -> list[dict]:
    out = []
    for e in res.entries:
        doc = e.run.doc
        env, run = doc["environment"], doc["run"]
        out.append({"e": e, "fields": [
            ("results file", f"{e.run.path.name} (sha256 {e.run.sha256[:12]})"),
            ("status", f"{doc.get('status')}" + (" — partial" if e.run.partial else "")),
            ("integrity", e.run.integrity),
            ("candidate source", e.identity.get("source")), ("candidate version", e.identity.get("version")),
            ("device", env.get("device")), ("torch", env.get("torch")), ("triton", env.get("triton")),
            ("python", env.get("python")), ("platform", env.get("platform")), ("cpu count", env.get("cpu_count")),
            ("commit", env.get("commit")), ("host", env.get("hostname")),
            ("started", doc.get("started")), ("finished", doc.get("finished")),
            ("fmspec", run.get("fmspec")), ("hypothesis profile", run.get("profile")),
            ("hypothesis seed", run.get("seed")), ("benchmarks run", run.get("bench")),
            ("command", ("pytest " + run["args"]) if run.get("args") is not None else None),
        ]})
    return out


def raw_json(res: tb.Results) -> bytes:
    """Every input, as read, in one JSON document: ``{"inputs": [{"file", "sha256", "results"}]}``."""
    docs = [{"file": run.path.name, "sha256": run.sha256, "results": run.doc} for run in res.runs]
    text = json.dumps({"inputs": docs}, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return text.encode("utf-8")


def _raw(res: tb.Results) -> str:
    """The raw data gzipped (mtime 0: byte-stable) and base64-encoded: a tenth of the size of the JSON."""
    return base64.b64encode(gzip.compress(raw_json(res), compresslevel=9, mtime=0)).decode("ascii")
