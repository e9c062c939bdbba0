"""The CI gate: ``fmspec gate RESULTS... --policy POLICY``; exit 0 when the policy is met, else 1.

A policy is a TOML file (samples: ``reports/policies/course.toml`` and ``team.toml``)::

    [gate]
    name = "course: assignment 1"   # shown in the verdict
    candidate = "mine"              # optional: the candidate judged (default: the one that is not the reference)
    allow_partial = false           # a run that did not finish (or a file cut short) fails the gate
    min_score = 0.6                 # optional: fraction of the points needed
    visibility = "visible"          # Gradescope visibility of the exported tests

    [components.attention]          # one table per component the policy cares about; others are ignored
    required = true                 # every recorded test passes: none failed, none missing
    features = ["attention.sparse"] # features that must be present and pass (also when required = false)
    may_be_missing = ["attention.performer"]   # missing tests of these features are allowed (true: any)
    allow_unsupported = true        # tests unsupported on this device/dtype are not held against it
    points = 30                     # conformance points: points x passed / counted
    min_speedup = { reference = 0.8, sdpa_flash = 0.5 }   # geometric mean of the speedups, same run
    speed_points = 10               # awarded when every min_speedup holds

Rules, each reported as one line of the verdict:

- *complete*: no input is partial, unless ``allow_partial``;
- *required*: for a required component, tests were recorded, at least one passed, none failed or
  errored, none is missing except for ``may_be_missing`` features, none unsupported unless allowed;
- *features*: each listed feature has tests, and all of them passed;
- *speed*: for each ``min_speedup`` entry, the geometric mean over the component's benchmarks of the
  speedup against that baseline is at least the minimum. Speedups are ratios measured in the same run
  (against the reference: its median over the candidate's, for the same benchmark and shape; against
  others: the benchmark's own ``speedup_vs_<name>``), never absolute times; speed of a component that
  did not pass conformance does not count;
- *score*: the points earned are at least ``min_score`` of the points available.

Where several results files hold the same candidate, a test recorded in more than one counts once, as
the last file (in the order given) recorded it.

Points: a component earns ``points x passed / counted``, where counted is passed + failed + errors +
missing that is not allowed (unsupported and allowed-missing tests do not count), plus its
``speed_points`` when all its speed rules hold.
"""

from __future__ import annotations

import math
import re
try:
    import tomllib  # novermin: Python 3.11; tomli below on 3.10
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from dataclasses import dataclass, field
from pathlib import Path

from fmspec.reports import tables as tb

GATE_KEYS = {"name": str, "candidate": str, "allow_partial": bool, "min_score": (int, float), "visibility": str}
COMPONENT_KEYS = {"required": bool, "features": list, "may_be_missing": (list, bool), "allow_unsupported": bool,
                  "points": (int, float), "speed_points": (int, float), "min_speedup": dict}
VISIBILITY = ("visible", "hidden", "after_due_date", "after_published")


class PolicyError(Exception):
    """A policy that cannot be applied (unknown component, bad key or value); one line for the user."""


def known_components() -> tuple[str, ...]:
    from fmspec import COMPONENTS

    return COMPONENTS


@dataclass
class ComponentRule:
    name: str
    required: bool = False
    features: list[str] = field(default_factory=list)
    may_be_missing: list[str] | bool = field(default_factory=list)
    allow_unsupported: bool = True
    points: float = 0.0
    speed_points: float = 0.0
    min_speedup: dict[str, float] = field(default_factory=dict)


@dataclass
class Policy:
    path: str
    name: str
    components: dict[str, ComponentRule]
    candidate: str | None = None
    allow_partial: bool = False
    min_score: float | None = None
    visibility: str = "visible"

    @property
    def max_points(self) -> float:
        return sum(r.points + r.speed_points for r in self.components.values())


def load_policy(path: str | Path) -> Policy:
    """Read and check a policy file; every mistake is a :class:`PolicyError` naming the file and the key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: not valid TOML ({exc})") from None
    unknown = set(data) - {"gate", "components"}
    if unknown:
        raise PolicyError(f"{path}: unknown table(s) {', '.join(sorted(unknown))} (expected [gate] and [components.NAME])")
    gate = data.get("gate", {})
    _check_keys(path, "gate", gate, GATE_KEYS)
    comps = data.get("components", {})
    if not isinstance(comps, dict) or not comps:
        raise PolicyError(f"{path}: no [components.NAME] table: the policy must name at least one component")
    known = known_components()
    rules = {}
    for name, spec in sorted(comps.items()):
        if name not in known:
            raise PolicyError(f"{path}: unknown component {name!r} in [components.{name}] (known: {', '.join(known)})")
        if not isinstance(spec, dict):
            raise PolicyError(f"{path}: components.{name} must be a table")
        _check_keys(path, f"components.{name}", spec, COMPONENT_KEYS)
        rule = ComponentRule(name, **{k: v for k, v in spec.items()})
        for key in ("features",) + (("may_be_missing",) if isinstance(rule.may_be_missing, list) else ()):
            for feature in getattr(rule, key):
                if not isinstance(feature, str) or feature.split(".")[0] != name or "." not in feature:
                    raise PolicyError(f"{path}: components.{name}.{key}: {feature!r} is not a feature of {name} "
                                      f"(expected '{name}.<function>')")
        for against, minimum in rule.min_speedup.items():
            if isinstance(minimum, bool) or not isinstance(minimum, (int, float)) or not minimum > 0:
                raise PolicyError(f"{path}: components.{name}.min_speedup.{against} must be a positive number")
        if rule.points < 0 or rule.speed_points < 0:
            raise PolicyError(f"{path}: components.{name}: points must not be negative")
        if rule.speed_points and not rule.min_speedup:
            raise PolicyError(f"{path}: components.{name}: speed_points needs min_speedup (what earns them)")
        rules[name] = rule
    min_score = gate.get("min_score")
    if min_score is not None and not 0 <= min_score <= 1:
        raise PolicyError(f"{path}: gate.min_score is a fraction of the points, between 0 and 1 (got {min_score})")
    if min_score and not sum(r.points + r.speed_points for r in rules.values()):
        raise PolicyError(f"{path}: gate.min_score is set but no component has points")
    visibility = gate.get("visibility", "visible")
    if visibility not in VISIBILITY:
        raise PolicyError(f"{path}: gate.visibility must be one of {', '.join(VISIBILITY)}")
    return Policy(str(path), gate.get("name", path.stem), rules, candidate=gate.get("candidate"),
                  allow_partial=gate.get("allow_partial", False), min_score=min_score, visibility=visibility)


def _check_keys(path: Path, where: str, table: dict, allowed: dict) -> None:
    if not isinstance(table, dict):
        raise PolicyError(f"{path}: [{where}] must be a table")
    for key, value in table.items():
        if key not in allowed:
            raise PolicyError(f"{path}: unknown key {where}.{key} (allowed: {', '.join(sorted(allowed))})")
        kinds = allowed[key] if isinstance(allowed[key], tuple) else (allowed[key],)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            raise PolicyError(f"{path}: {where}.{key} has the wrong type ({type(value).__name__})")


# ------------------------------------------------------------------------------------------------ verdict
@dataclass
class Check:
    ok: bool
    rule: str
    detail: str


@dataclass
class ComponentScore:
    component: str
    score: float
    max_score: float
    counts: dict
    counted: int
    failing: list[dict]
    bad_missing: list[dict]
    speedups: dict[str, tuple[float | None, int]]


@dataclass
class Verdict:
    policy: Policy
    candidate: str
    checks: list[Check]
    scores: dict[str, ComponentScore]
    warnings: list[str] = field(default_factory=list)  # policy entries that matched nothing, and the like

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def score(self) -> float:
        return sum(s.score for s in self.scores.values())

    @property
    def max_score(self) -> float:
        return sum(s.max_score for s in self.scores.values())

    def text(self) -> str:
        head = "PASSED" if self.passed else "FAILED"
        lines = [f"fmspec gate: {head}: candidate {self.candidate!r}, policy {self.policy.name!r} ({self.policy.path})"]
        if self.max_score:
            lines.append(f"score {_pts(self.score)} / {_pts(self.max_score)}")
        for c in self.checks:
            lines.append(f"  {'ok  ' if c.ok else 'FAIL'}  {c.rule}: {c.detail}")
        lines += [f"  warn  {w}" for w in self.warnings]
        return "\n".join(lines) + "\n"


def _pts(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def choose_candidate(results: tb.Results, wanted: str | None) -> str:
    """The candidate to judge: ``wanted``, else the one candidate that is not the reference."""
    names = list(dict.fromkeys(e.candidate for e in results.entries))
    if wanted:
        if wanted not in names:
            raise PolicyError(f"candidate {wanted!r} is not in these results (found: {', '.join(names) or 'none'})")
        return wanted
    others = [n for n in names if n != tb.REFERENCE]
    if len(others) == 1:
        return others[0]
    if not others and names:
        return names[0]
    raise PolicyError(f"these results hold {len(others)} candidates besides the reference ({', '.join(others) or 'none'}): "
                      f"say which with --candidate or the policy's gate.candidate")


def latest(tests, labels: set):
    """The tests of these entries, one record per test: where files repeat a test, the later file wins
    (a conformance run then a benchmark run, or a rerun, never count a test twice)."""
    t = tests[tests["entry"].isin(labels)]
    return t.sort_values("run", kind="stable").drop_duplicates("nodeid", keep="last").sort_index()


_HAS_NO = re.compile(r"has no ([A-Za-z_][\w.]*)")


def _missing_feature(row) -> str | None:
    """Which feature a missing test lacked, from its message (``candidate 'x' has no posenc.sinusoidal``)."""
    m = _HAS_NO.search(str(row.message or ""))
    return m.group(1) if m else None


def _allowed_missing(row, rule: ComponentRule) -> bool:
    if rule.may_be_missing is True:
        return True
    allowed = set(rule.may_be_missing or ())
    lacked = _missing_feature(row)
    if lacked is not None:
        return lacked in allowed
    return any(f in allowed for f in row.features)  # NotImplementedError: any feature it needs may be the one


def evaluate(results: tb.Results, policy: Policy, candidate: str | None = None) -> Verdict:
    name = choose_candidate(results, candidate or policy.candidate)
    entries = [e for e in results.entries if e.candidate == name]
    labels = {e.label for e in entries}
    checks: list[Check] = []
    partial = [e.run.path.name for e in entries if e.run.partial]
    if partial:
        checks.append(Check(policy.allow_partial, "complete",
                            f"partial results ({', '.join(partial)})" + (", allowed" if policy.allow_partial else
                                                                         ": the run did not finish")))
    else:
        checks.append(Check(True, "complete", "every results file is complete"))
    t = latest(results.conformance, labels)
    bench = results.benchmarks
    bench = bench[bench["entry"].isin(labels)] if not bench.empty else bench
    scores = {}
    warnings = []
    for comp, rule in policy.components.items():
        rows = t[t["component"] == comp]
        recorded = set().union(*rows["features"]) if not rows.empty else set()
        for feature in (rule.may_be_missing if isinstance(rule.may_be_missing, list) else []):
            if feature not in recorded:  # a typo, or a feature the suite no longer has: say so, never keep it silently
                warnings.append(f"components.{comp}.may_be_missing: {feature!r} matches no test of {name!r} in "
                                f"these results (recorded {comp} features: {_names(sorted(recorded), 6) or 'none'})")
        counts = tb.outcome_counts(rows)
        failing = [{"property": r.property, "params": r.params, "outcome": r.outcome, "message": r.message,
                    "reproduce": r.reproduce, "nodeid": r.nodeid} for r in rows[rows["outcome"].isin(tb.FAILING)].itertuples()]
        missing = rows[rows["outcome"] == "missing"]
        bad_missing = [{"property": r.property, "feature": _missing_feature(r) or ", ".join(r.features)}
                       for r in missing.itertuples() if not _allowed_missing(r, rule)]
        unsupported = counts.get("unsupported", 0)
        passed = counts.get("passed", 0)
        counted = passed + len(failing) + len(bad_missing) + (0 if rule.allow_unsupported else unsupported)
        conformant = passed > 0 and not failing
        if rule.required:
            problems = []
            if rows.empty:
                problems.append("no tests recorded")
            elif not passed:
                problems.append("no test passed")
            if failing:
                problems.append(f"{len(failing)} failed ({_names(f['property'] for f in failing)})")
            if bad_missing:
                problems.append(f"{len(bad_missing)} missing ({_names(m['feature'] for m in bad_missing)})")
            if unsupported and not rule.allow_unsupported:
                problems.append(f"{unsupported} unsupported")
            ok_detail = f"{passed}/{len(rows)} passed" + _allowed_note(counts, len(bad_missing), rule)
            checks.append(Check(not problems, f"{comp} required", "; ".join(problems) or ok_detail))
        for feature in rule.features:
            frows = rows.loc[rows["features"].map(lambda fs, f=feature: f in fs).astype(bool)]
            bad = frows[frows["outcome"] != "passed"]
            if frows.empty:
                checks.append(Check(False, f"{feature} required", "no test of it recorded"))
            elif not bad.empty:
                checks.append(Check(False, f"{feature} required",
                                    f"{len(bad)} of {len(frows)} tests did not pass ({_names(bad['outcome'])})"))
            else:
                checks.append(Check(True, f"{feature} required", f"{len(frows)}/{len(frows)} passed"))
        speedups = {}
        speed_ok = bool(rule.min_speedup)
        for against, minimum in sorted(rule.min_speedup.items()):
            col = f"speedup_vs_{against}"
            b = bench[bench["component"] == comp] if not bench.empty else bench
            values = b[col].tolist() if not b.empty and col in b else []
            geo = tb.geomean(values)
            n = sum(1 for v in values if v is not None and not (isinstance(v, float) and math.isnan(v)))
            speedups[against] = (geo, n)
            rule_name = f"{comp} speed vs {against}"
            if rows.empty:
                ok, detail = False, f"no conformance test of {comp} recorded: its speed does not count"
            elif not conformant:
                ok, detail = False, f"{comp} did not pass conformance: its speed does not count"
            elif geo is None:
                ok, detail = False, f"no benchmark of {comp} measured against {against} in these results"
            else:
                ok = geo >= minimum
                detail = f"geometric mean {geo:.2f}× {'≥' if ok else '<'} {minimum:g}× over {n} benchmark(s)"
            speed_ok = speed_ok and ok
            checks.append(Check(ok, rule_name, detail))
        score = rule.points * passed / counted if counted else 0.0
        score += rule.speed_points if speed_ok else 0.0
        scores[comp] = ComponentScore(comp, score, rule.points + rule.speed_points, counts, counted, failing,
                                      bad_missing, speedups)
    verdict = Verdict(policy, name, checks, scores, warnings)
    if policy.min_score is not None:
        frac = verdict.score / verdict.max_score if verdict.max_score else 0.0
        checks.append(Check(frac >= policy.min_score - 1e-12, "score",
                            f"{_pts(verdict.score)}/{_pts(verdict.max_score)} = {100 * frac:.1f}% "
                            f"{'≥' if frac >= policy.min_score - 1e-12 else '<'} {100 * policy.min_score:g}%"))
    return verdict


def _names(items, limit: int = 3) -> str:
    seen = list(dict.fromkeys(str(i) for i in items))
    return ", ".join(seen[:limit]) + (f" and {len(seen) - limit} more" if len(seen) > limit else "")


def _allowed_note(counts: dict, bad_missing: int, rule: ComponentRule) -> str:
    notes = []
    allowed = counts.get("missing", 0) - bad_missing
    if allowed:
        notes.append(f"{allowed} missing allowed")
    if counts.get("unsupported") and rule.allow_unsupported:
        notes.append(f"{counts['unsupported']} unsupported")
    return f" ({', '.join(notes)})" if notes else ""
