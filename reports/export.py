"""Exports: ``fmspec export {gradescope,junit,markdown} RESULTS... -o OUT [--policy POLICY]``.

- ``gradescope``: the autograder's ``results.json`` for one candidate: ``score``, one test per component
  (``score``/``max_score``, ``status``, ``visibility``, ``output`` listing what failed and how to
  reproduce it), and ``leaderboard`` entries from the benchmarks (geometric-mean speedups). With a policy,
  points and visibility come from it and the gate's verdict is the top-level ``output``; an extra-credit
  component is a test with ``max_score`` 0 whose ``score`` is the bonus earned. Without one, a component
  is worth one point per counted test (passed, failed, errors, missing; unsupported and skipped tests
  are not counted, and its name says so). :func:`gradescope_all`: one such document per candidate.
- ``junit``: JUnit XML for CI test tabs: one ``<testsuite>`` per candidate and component, one
  ``<testcase>`` per test; failed -> ``<failure>``, error -> ``<error>``, missing / unsupported / skipped
  -> ``<skipped>`` whose message says which.
- ``markdown``: a summary fit for a CI job summary (``$GITHUB_STEP_SUMMARY``): the matrix, the gate's
  verdict when a policy is given, the failures with their reproduce commands, the speed summary.

Every export is byte-stable for the same inputs (sorted, no time of its own).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from fmspec.reports import gate as gt
from fmspec.reports import tables as tb

MAX_OUTPUT = 8000  # characters of a Gradescope test's output
MAX_MARKDOWN_FAILURES = 30
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def render(fmt: str, results: tb.Results, policy: gt.Policy | None = None, candidate: str | None = None) -> str:
    if fmt == "gradescope":
        return dumps(gradescope(results, policy, candidate))
    if fmt == "junit":
        return junit(results)
    if fmt == "markdown":
        return markdown(results, policy, candidate)
    raise ValueError(f"format: unknown export {fmt!r} (gradescope, junit, markdown)")


# --------------------------------------------------------------------------------------------- gradescope
def dumps(doc: dict) -> str:
    """A Gradescope document as the file holds it (sorted keys: byte-stable)."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def file_names(names: list[str]) -> dict[str, str]:
    """A file name per candidate, distinct: ``alice/mine`` -> ``alice-mine.json``."""
    out, used = {}, set()
    for name in names:
        base = tb.slug(name.replace("/", "-"))
        stem, k = base, 2
        while stem.lower() in used:
            stem, k = f"{base}-{k}", k + 1
        used.add(stem.lower())
        out[name] = stem + ".json"
    return out


def gradescope(results: tb.Results, policy: gt.Policy | None = None, candidate: str | None = None) -> dict:
    """The Gradescope autograder results for one candidate (see the autograder specification)."""
    subject = candidate if isinstance(candidate, gt.Subject) else \
        gt.choose(results, candidate or (policy.candidate if policy else None))
    name, labels = subject.name, subject.labels
    verdict = gt.evaluate(results, policy, subject) if policy else None
    visibility = policy.visibility if policy else "visible"
    t = gt.latest(results.conformance, labels)
    comps = sorted(policy.components) if policy else sorted(set(t["component"]))
    tests = []
    for number, comp in enumerate(comps, 1):
        rows = t[t["component"] == comp]
        counts = tb.outcome_counts(rows)
        extra = False
        if verdict is not None:
            cs = verdict.scores[comp]
            score, max_score, extra = cs.score, cs.max_score, cs.extra_credit
            title = f"{comp}: {_counts_text(counts) or 'no tests recorded'}"
            title += f" (extra credit, up to {gt._pts(max_score)} points)" if extra else ""
        else:
            score, max_score = float(counts.get("passed", 0)), float(_counted(counts))
            title = f"{comp}: {_plain_counts(counts)}"
        tests.append({
            "name": title,
            "number": str(number),
            "score": round(score, 4),
            "max_score": 0.0 if extra else round(max_score, 4),
            "status": _status(rows, verdict, comp),
            "visibility": visibility,
            "output": _component_output(rows, verdict, comp),
            "tags": [comp, "extra credit"] if extra else [comp],
        })
    out = {
        "score": round(sum(x["score"] for x in tests), 4),
        "execution_time": int(round(float(t["duration"].sum()))),
        "output": verdict.text() if verdict else _plain_summary(t),
        "visibility": visibility,
        "stdout_visibility": "hidden",
        "tests": tests,
        "leaderboard": _leaderboard(results, labels),
        "extra_data": {"candidate": name, "source": subject.path,
                       "partial": any(e.run.partial for e in results.entries if e.label in labels),
                       "devices": sorted({e.run.device for e in results.entries if e.label in labels}),
                       "commit": sorted({str(e.run.doc["environment"].get("commit")) for e in results.entries
                                         if e.label in labels})},
    }
    return out


def gradescope_all(results: tb.Results, policy: gt.Policy | None = None) -> dict[str, dict]:
    """One Gradescope document per candidate judged (:func:`fmspec.reports.gate.judged`), by its name."""
    return {s.name: gradescope(results, policy, s) for s in gt.judged(results, policy)}


def _counted(counts: dict) -> int:
    """Without a policy, a test counts when it passed, failed, errored or is missing."""
    return counts.get("passed", 0) + sum(counts.get(o, 0) for o in tb.FAILING) + counts.get("missing", 0)


def _plain_counts(counts: dict) -> str:
    """``{"passed": 18, "missing": 10, "unsupported": 3, "skipped": 15}`` ->
    ``18/28 passed (10 missing; not counted: 3 unsupported, 15 skipped)``: the score over its maximum."""
    if not counts:
        return "no tests recorded"
    shown = [f"{counts[o]} {o}" for o in ("failed", "error", "xpassed", "missing") if counts.get(o)]
    apart = [f"{n} {o}" for o, n in counts.items() if o not in ("passed", "failed", "error", "xpassed", "missing")]
    notes = "; ".join(x for x in (", ".join(shown), ("not counted: " + ", ".join(apart)) if apart else "") if x)
    return f"{counts.get('passed', 0)}/{_counted(counts)} passed" + (f" ({notes})" if notes else "")


def _status(rows, verdict: gt.Verdict | None, comp: str) -> str:
    """passed: the policy's rules for the component hold (without a policy: nothing failed or missing)."""
    if verdict is not None:
        ours = [c for c in verdict.checks if gt._rule_component(c.rule) == comp]
        if ours:
            return "passed" if all(c.ok for c in ours) else "failed"
        return "passed" if not verdict.scores[comp].failing and not verdict.scores[comp].bad_missing else "failed"
    bad = rows["outcome"].isin(tb.FAILING + ("missing",)).any()
    return "failed" if bad or rows.empty else "passed"


def _counts_text(counts: dict) -> str:
    return ", ".join(f"{n} {o}" for o, n in counts.items())


def _component_output(rows, verdict: gt.Verdict | None, comp: str) -> str:
    lines = []
    if verdict is not None:
        lines += [f"{_mark(c)}: {c.rule}: {c.detail}" for c in verdict.checks if gt._rule_component(c.rule) == comp]
        lines += [f"warn: {w}" for w in verdict.warnings
                  if gt._rule_component(w.split(":")[0].removeprefix("components.")) == comp]
    for r in rows[rows["outcome"].isin(tb.FAILING)].itertuples():
        params = f" [{tb.shape_text(r.params)}]" if r.params else ""
        lines.append(f"{r.outcome}: {r.property}{params}: {tb.headline(r.message)}")
        if r.example:
            lines.append("  " + str(r.example).strip().replace("\n", "\n  "))
        if r.reproduce:
            lines.append(f"  reproduce: {r.reproduce}")
    missing = rows[rows["outcome"] == "missing"]
    if not missing.empty:
        lines.append(f"missing ({len(missing)}): " + ", ".join(sorted(set(missing["property"]))))
    text = "\n".join(lines)
    return text if len(text) <= MAX_OUTPUT else text[:MAX_OUTPUT] + "\n... (cut; the HTML report has everything)"


def _mark(c: gt.Check) -> str:
    return ("earned" if c.ok else "not earned") if c.bonus else ("ok" if c.ok else "FAIL")


def _plain_summary(t) -> str:
    """Per component, the same numbers as its test's score and max_score."""
    lines = []
    for comp in sorted(set(t["component"])):
        lines.append(f"{comp}: {_plain_counts(tb.outcome_counts(t[t['component'] == comp]))}")
    return "\n".join(lines) + "\n"


def _leaderboard(results: tb.Results, labels: set) -> list[dict]:
    sp = results.speedups()
    sp = sp[sp["entry"].isin(labels)] if not sp.empty else sp
    board = []
    for r in sp.itertuples(index=False):
        rec = r._asdict()
        for key in [c for c in sp.columns if c.startswith("speedup_vs_")]:
            value = rec.get(key)
            if value is None or value != value:
                continue
            device = "" if len({e.run.device for e in results.entries}) == 1 else f" ({rec['device']})"
            board.append({"name": f"{rec['component']} {tb.metric_label(key)}{device}", "value": round(value, 4),
                          "order": "desc"})
    return sorted(board, key=lambda x: x["name"])


# ------------------------------------------------------------------------------------------------- junit
def _xml_text(value) -> str:
    return _XML_BAD.sub("", _ANSI.sub("", str(value)))


def junit(results: tb.Results) -> str:
    """JUnit XML: ``<testsuites>`` / ``<testsuite>`` per candidate and component / ``<testcase>`` per test."""
    t = results.tests
    root = ET.Element("testsuites", name="fmspec")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "time": 0.0}
    for e in results.entries:
        rows_e = t[t["entry"] == e.label]
        for comp in sorted(set(rows_e["component"])):
            rows = rows_e[rows_e["component"] == comp]
            counts = tb.outcome_counts(rows)
            n = {"tests": len(rows), "failures": counts.get("failed", 0) + counts.get("xpassed", 0),
                 "errors": counts.get("error", 0),
                 "skipped": sum(counts.get(o, 0) for o in ("missing", "unsupported", "skipped", "xfailed")),
                 "time": float(rows["duration"].sum())}
            for k in totals:
                totals[k] += n[k]
            suite = ET.SubElement(root, "testsuite", name=_xml_text(f"{e.label}.{comp}"), tests=str(n["tests"]),
                                  failures=str(n["failures"]), errors=str(n["errors"]), skipped=str(n["skipped"]),
                                  time=f"{n['time']:.3f}",
                                  timestamp=_xml_text(str(e.run.doc.get("started") or "")[:19]),
                                  hostname=_xml_text(e.run.doc["environment"].get("hostname") or "unknown"))
            props = ET.SubElement(suite, "properties")
            env = e.run.doc["environment"]
            for key, value in (("candidate", e.candidate), ("candidate.source", e.identity.get("source")),
                               ("device", env.get("device")), ("torch", env.get("torch")), ("commit", env.get("commit")),
                               ("results", e.run.path.name), ("partial", str(e.run.partial).lower())):
                if value is not None:
                    ET.SubElement(props, "property", name=key, value=_xml_text(value))
            for r in rows.itertuples():
                case = ET.SubElement(suite, "testcase", classname=_xml_text(f"fmspec.{e.candidate}.{comp}"),
                                     name=_xml_text(r.nodeid.split("::", 1)[-1]), file=_xml_text(r.nodeid.split("::")[0]),
                                     time=f"{r.duration:.3f}")
                body = "\n\n".join(str(x) for x in (r.message, r.example, r.reproduce and f"reproduce: {r.reproduce}") if x)
                if r.outcome in ("failed", "xpassed"):
                    el = ET.SubElement(case, "failure", message=_xml_text(tb.headline(r.message) or r.outcome),
                                       type=r.outcome)
                    el.text = _xml_text(body)
                elif r.outcome == "error":
                    el = ET.SubElement(case, "error", message=_xml_text(tb.headline(r.message) or "error"), type="error")
                    el.text = _xml_text(body)
                elif r.outcome != "passed":
                    ET.SubElement(case, "skipped", message=_xml_text(f"{r.outcome}: {tb.headline(r.message)}"),
                                  type=r.outcome)
    for k, v in totals.items():
        root.set(k, f"{v:.3f}" if k == "time" else str(v))
    ET.indent(root, space=" ")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# ---------------------------------------------------------------------------------------------- markdown
_ICON = {"pass": "✅", "gaps": "🟡", "missing": "⚪", "fail": "❌", "none": ""}


def _md_mark(c: gt.Check) -> str:
    return ("➕" if c.ok else "➖") if c.bonus else ("✅" if c.ok else "❌")


def _md(text) -> str:
    """Table-cell safe: no pipes or newlines."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(results: tb.Results, policy: gt.Policy | None = None, candidate: str | None = None) -> str:
    lines = ["# fmspec results", ""]
    judged = gt.judged(results, policy, candidate) if policy is not None else []
    if len(judged) == 1:
        verdict = gt.evaluate(results, policy, judged[0])
        lines += [f"**Gate: {'PASSED ✅' if verdict.passed else 'FAILED ❌'}** — candidate `{verdict.candidate}`, "
                  f"policy *{_md(policy.name)}*" + (f", {verdict.score_text()}"
                                                   if verdict.max_score or verdict.extra_max else ""), ""]
        lines += [f"- {_md_mark(c)} **{_md(c.rule)}**: {_md(c.detail)}" for c in verdict.checks]
        lines += [f"- ⚠️ {_md(w)}" for w in verdict.warnings] + [""]
    elif judged:
        table = gt.class_table(results, policy, [s.name for s in judged])
        speed = list(table[0].speedups) if table else []
        lines += [f"**Gate: {sum(r.passed for r in table)} of {len(table)} candidates passed** — policy "
                  f"*{_md(policy.name)}*", "",
                  "| " + " | ".join(["candidate", "verdict", "score", "failed", *map(_md, speed)]) + " |",
                  "| --- | --- | ---: | --- |" + " ---: |" * len(speed)]
        for r in table:
            score = f"{gt._pts(r.score)}/{gt._pts(r.max_score)}"
            score += f" (+{gt._pts(r.extra_score)})" if r.extra_score else ""
            cells = [_md(r.name), "✅ passed" if r.passed else "❌ failed", score, _md(", ".join(r.failed)) or "–",
                     *(tb.format_number(v, "speedup_vs_") for v in r.speedups.values())]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    for run in results.runs:
        for note in run.doc.get("notes", []):
            lines.append(f"> ⚠️ `{run.path.name}` is partial: {note}")
    if any(run.doc.get("notes") for run in results.runs):
        lines.append("")
    comps = results.components
    m = results.matrix()
    cells = {(r.entry, r.component): r for r in m.itertuples()}
    lines += ["## Conformance", "", "| candidate | " + " | ".join(comps) + " |",
              "| --- |" + " --- |" * len(comps)]
    for e in results.entries:
        row = []
        for comp in comps:
            c = cells[(e.label, comp)]
            if not c.total:
                row.append("–")
                continue
            extra = [f"{n} {o}" for o in ("failed", "error", "xpassed", "missing", "unsupported") if (n := getattr(c, o))]
            row.append(f"{_ICON[c.state]} {c.passed}/{c.counted}" + (f" ({', '.join(extra)})" if extra else "")
                       + (f" · {c.apart} skipped" if c.apart else ""))
        partial = " *(partial)*" if e.run.partial else ""
        lines.append(f"| {_md(e.label)}{partial} | " + " | ".join(row) + " |")
    lines.append("")
    t = results.tests
    failing = t[t["outcome"].isin(tb.FAILING)]
    if not failing.empty:
        lines += [f"## Failures ({len(failing)})", ""]
        for r in failing.head(MAX_MARKDOWN_FAILURES).itertuples():
            params = f" [{_md(tb.shape_text(r.params))}]" if r.params else ""
            lines.append(f"- **{_md(r.entry)}** · {r.component} · `{r.property}`{params}: {_md(tb.headline(r.message))}")
            if r.reproduce:
                lines.append(f"  `{r.reproduce}`")
        if len(failing) > MAX_MARKDOWN_FAILURES:
            lines.append(f"- … and {len(failing) - MAX_MARKDOWN_FAILURES} more (see the HTML report)")
        lines.append("")
    sp = results.speedups()
    if not sp.empty:
        cols = [c for c in sp.columns if c.startswith("speedup_vs_") and sp[c].notna().any()]
        lines += ["## Speed (geometric mean of speedups, same run; conformant components only)", "",
                  "| device | component | candidate | benchmarks | " + " | ".join(tb.metric_label(c) for c in cols) + " |",
                  "| --- | --- | --- | ---: |" + " ---: |" * len(cols)]
        for r in sp.itertuples(index=False):
            rec = r._asdict()
            lines.append(f"| {_md(rec['device'])} | {rec['component']} | {_md(rec['entry'])} | {rec['benchmarks']} | "
                         + " | ".join(tb.format_number(rec[c], c) for c in cols) + " |")
        lines.append("")
    return "\n".join(lines)
