"""The CI gate: ``fmspec gate RESULTS... --policy POLICY``; exit 0 when the policy is met, else 1.

A policy is a TOML file (samples: ``reports/policies/course.toml`` and ``team.toml``)::

    [gate]
    name = "course: assignment 1"   # shown in the verdict
    candidate = "mine"              # optional: the candidate judged (default: every one that is not the reference)
    allow_partial = false           # a run that did not finish (or a file cut short) fails the gate
    require_signed = false          # true: a file not signed with this machine's key fails (fmspec grade: always)
    min_score = 0.6                 # optional: fraction of the points needed
    visibility = "visible"          # Gradescope visibility of the exported tests
    unmeasured = "warn"             # a speed rule with nothing to measure: "warn" (default) or "fail"

    [components.attention]          # one table per component the policy cares about; others are ignored
    required = true                 # every recorded test passes: none failed, none missing
    features = ["attention.sparse"] # features that must be present and pass (also when required = false)
    may_be_missing = ["attention.performer"]   # missing tests of these features are allowed (true: any)
    allow_unsupported = true        # tests unsupported on this device/dtype are not held against it
    points = 30                     # conformance points: points x passed / counted
    min_speedup = { reference = 0.8, sdpa_flash = 0.5 }   # geometric mean of the speedups, same run
    speed_points = 10               # awarded when every min_speedup holds
    unmeasured = "fail"             # this component's speed rules: nothing measured fails the gate

    [components.flash]
    extra_credit = true             # its points are a bonus beyond the maximum; its rules never fail the gate
    points = 5
    min_speedup = { reference = 0.5 }
    speed_points = 5

Rules, each reported as one line of the verdict:

- *complete*: no input is partial, unless ``allow_partial``;
- *integrity*: no input was edited after its run (its HMAC digest, :mod:`fmspec.integrity`, does not
  match: always a failure); an input that is unsigned or signed with a key this machine does not hold is a
  ``warn`` line, or a failure with ``require_signed`` (``fmspec gate --require-signed``);
- *required*: for a required component, tests were recorded, at least one passed, none failed or
  errored, none is missing except for ``may_be_missing`` features, none unsupported unless allowed;
- *features*: each listed feature has tests, and all of them passed;
- *speed*: for each ``min_speedup`` entry, the geometric mean over the component's benchmarks of the
  speedup against that baseline is at least the minimum. Speedups are ratios measured in the same run
  (against the reference: its median over the candidate's, for the same benchmark and shape; against
  others: the benchmark's own ``speedup_vs_<name>``), never absolute times; speed of a component that
  failed a conformance test does not count. A rule with nothing to measure (no benchmark against that
  baseline in the results: a CPU run, no ``--fmspec-bench``; or no test of the component passed, the
  feature missing) is not applied: a ``warn`` line says so, unless ``unmeasured = "fail"`` makes it a
  failed rule. Its ``speed_points`` are not earned either way;
- *extra credit*: a component with ``extra_credit = true`` earns its points (conformance and speed)
  beyond the maximum; its rules are reported (``+`` earned, ``-`` not) and never fail the gate;
- *import*: the candidate could be imported (a candidate that could not is recorded with its error);
- *score*: the points earned (extra credit included) are at least ``min_score`` of the maximum.

Where several results files hold the same candidate, a test recorded in more than one counts once, as
the last file (in the order given) recorded it. Candidates are told apart by name and, where both were
loaded from a path, by that path: two submissions that are both called ``mine`` are two candidates, named
by the shortest ends of their paths that differ (``alice/mine``, ``bob/mine``), never merged.

A class (one results file per submission): :func:`class_table` judges every candidate and returns one
:class:`ClassRow` each; ``fmspec gate --all`` prints :func:`class_text` of it, one line a candidate.

Points: a component earns ``points x passed / counted``, where counted is passed + failed + errors +
missing that is not allowed (unsupported and allowed-missing tests do not count), plus its
``speed_points`` when all its speed rules hold.
"""

from __future__ import annotations

import math
try:
    import tomllib  # novermin: Python 3.11; tomli below on 3.10
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from dataclasses import dataclass, field
from pathlib import Path

from fmspec.reports import tables as tb

GATE_KEYS = {"name": str, "candidate": str, "allow_partial": bool, "min_score": (int, float), "visibility": str,
             "unmeasured": str, "require_signed": bool}
COMPONENT_KEYS = {"required": bool, "features": list, "may_be_missing": (list, bool), "allow_unsupported": bool,
                  "points": (int, float), "speed_points": (int, float), "min_speedup": dict, "extra_credit": bool,
                  "unmeasured": str}
VISIBILITY = ("visible", "hidden", "after_due_date", "after_published")
UNMEASURED = ("warn", "fail")  # what a speed rule with nothing to measure does


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
    extra_credit: bool = False
    unmeasured: str | None = None  # None: the policy's [gate] unmeasured


@dataclass
class Policy:
    path: str
    name: str
    components: dict[str, ComponentRule]
    candidate: str | None = None
    allow_partial: bool = False
    min_score: float | None = None
    visibility: str = "visible"
    unmeasured: str = "warn"
    require_signed: bool = False

    @property
    def max_points(self) -> float:
        """The points a submission can earn, extra credit not included."""
        return sum(r.points + r.speed_points for r in self.components.values() if not r.extra_credit)

    @property
    def extra_points(self) -> float:
        return sum(r.points + r.speed_points for r in self.components.values() if r.extra_credit)

    def unmeasured_fails(self, rule: ComponentRule) -> bool:
        return not rule.extra_credit and (rule.unmeasured or self.unmeasured) == "fail"


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
        if rule.unmeasured is not None:
            if rule.unmeasured not in UNMEASURED:
                raise PolicyError(f"{path}: components.{name}.unmeasured must be one of {', '.join(UNMEASURED)}")
            if not rule.min_speedup:
                raise PolicyError(f"{path}: components.{name}.unmeasured applies to min_speedup, which it has not")
        if rule.extra_credit and rule.required:
            raise PolicyError(f"{path}: components.{name}: extra credit cannot be required (it never fails the gate)")
        if rule.extra_credit and rule.unmeasured == "fail":
            raise PolicyError(f"{path}: components.{name}: unmeasured = \"fail\" contradicts extra_credit "
                              f"(an extra-credit rule never fails the gate)")
        rules[name] = rule
    min_score = gate.get("min_score")
    if min_score is not None and not 0 <= min_score <= 1:
        raise PolicyError(f"{path}: gate.min_score is a fraction of the points, between 0 and 1 (got {min_score})")
    if min_score and not sum(r.points + r.speed_points for r in rules.values() if not r.extra_credit):
        raise PolicyError(f"{path}: gate.min_score is set but no component has points (extra credit aside)")
    unmeasured = gate.get("unmeasured", "warn")
    if unmeasured not in UNMEASURED:
        raise PolicyError(f"{path}: gate.unmeasured must be one of {', '.join(UNMEASURED)}")
    visibility = gate.get("visibility", "visible")
    if visibility not in VISIBILITY:
        raise PolicyError(f"{path}: gate.visibility must be one of {', '.join(VISIBILITY)}")
    return Policy(str(path), gate.get("name", path.stem), rules, candidate=gate.get("candidate"),
                  allow_partial=gate.get("allow_partial", False), min_score=min_score, visibility=visibility,
                  unmeasured=unmeasured, require_signed=gate.get("require_signed", False))


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
    bonus: bool = False  # an extra-credit rule: reported, never fails the gate


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
    extra_credit: bool = False


@dataclass
class Verdict:
    policy: Policy
    candidate: str
    checks: list[Check]
    scores: dict[str, ComponentScore]
    warnings: list[str] = field(default_factory=list)  # unmeasured speed rules, policy entries that matched nothing

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks if not c.bonus)

    @property
    def score(self) -> float:
        """Every point earned, extra credit included."""
        return sum(s.score for s in self.scores.values())

    @property
    def max_score(self) -> float:
        """The points available, extra credit not included (a score may exceed it)."""
        return sum(s.max_score for s in self.scores.values() if not s.extra_credit)

    @property
    def extra_score(self) -> float:
        return sum(s.score for s in self.scores.values() if s.extra_credit)

    @property
    def extra_max(self) -> float:
        return sum(s.max_score for s in self.scores.values() if s.extra_credit)

    def failed_rules(self) -> list[str]:
        return [c.rule for c in self.checks if not c.ok and not c.bonus]

    def failed_components(self) -> list[str]:
        """What failed, by component (``attention``), or the gate-wide rule (``complete``, ``import``, ``score``)."""
        return list(dict.fromkeys(_rule_component(r) for r in self.failed_rules()))

    def score_text(self) -> str:
        text = f"score {_pts(self.score)} / {_pts(self.max_score)}"
        if self.extra_max:
            text += f" ({_pts(self.extra_score)} of {_pts(self.extra_max)} extra-credit points)"
        return text

    def text(self) -> str:
        head = "PASSED" if self.passed else "FAILED"
        lines = [f"fmspec gate: {head}: candidate {self.candidate!r}, policy {self.policy.name!r} ({self.policy.path})"]
        if self.max_score or self.extra_max:
            lines.append(self.score_text())
        for c in self.checks:
            mark = ("+   " if c.ok else "-   ") if c.bonus else ("ok  " if c.ok else "FAIL")
            lines.append(f"  {mark}  {c.rule}: {c.detail}")
        lines += [f"  warn  {w}" for w in self.warnings]
        return "\n".join(lines) + "\n"


def integrity_checks(runs: list[tb.Run], required: bool) -> tuple[list[Check], list[str]]:
    """The *integrity* rule over the runs of one candidate, as checks and warnings: edited fails; unsigned or
    another key's warns (fails when ``required``)."""
    from fmspec import integrity

    runs = list({r.path: r for r in runs}.values())
    edited = [r.path.name for r in runs if r.integrity == integrity.EDITED]
    unsure = [f"{r.path.name} ({r.integrity})" for r in runs if r.integrity in (integrity.UNSIGNED, integrity.OTHER_KEY)]
    checks, warnings = [], []
    if edited:
        checks.append(Check(False, "integrity", f"edited after the run or cut short: {', '.join(edited)} (its digest "
                                                "does not match its contents)"))
    if unsure and required:
        checks.append(Check(False, "integrity", f"not signed with this machine's key: {', '.join(unsure)}"))
    elif unsure:
        warnings.append(f"integrity: cannot be verified here: {', '.join(unsure)} (--require-signed fails it)")
    if not edited and not unsure:
        checks.append(Check(True, "integrity", "every results file is signed with this machine's key and unchanged"))
    return checks, warnings


def _rule_component(rule: str) -> str:
    """``attention required`` -> ``attention``, ``quant.absmax_quantize required`` -> ``quant``,
    ``flash speed vs reference`` -> ``flash``, ``complete`` -> ``complete``."""
    return rule.split(" ")[0].split(".")[0]


def _pts(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


# ----------------------------------------------------------------------------------------------- subjects
@dataclass(frozen=True)
class Subject:
    """One candidate to judge: its name in the verdict (unique in these results), its name in the results
    files, the path it was loaded from (None: an entry point or module), the entries (files) that hold it,
    and the import error recorded for it (None: it was imported)."""

    name: str
    candidate: str
    path: str | None
    labels: frozenset
    error: str | None = None


def subjects(results: tb.Results) -> list[Subject]:
    """Every candidate in these results, in the order first seen. Entries of one name are one candidate
    (a conformance run and a benchmark run, a rerun), unless they were loaded from different paths: two
    submissions called ``mine`` are two candidates, named by their paths' shortest distinct ends."""
    groups: dict[tuple[str, str | None], list[tb.Entry]] = {}
    for e in results.entries:
        groups.setdefault((e.candidate, tb.source_path(e.identity)), []).append(e)
    by_name: dict[str, list[str | None]] = {}
    for name, path in groups:
        by_name.setdefault(name, []).append(path)
    out = []
    for (name, path), entries in groups.items():
        shown = name
        if len(by_name[name]) > 1:
            if path is None:
                shown = f"{name} @ {'+'.join(e.run.path.stem for e in entries)}"
            else:
                shown = tb.short_path(path, [p for p in by_name[name] if p is not None])
        error = next((str(e.identity["error"]) for e in entries if e.identity.get("error")), None)
        out.append(Subject(shown, name, path, frozenset(e.label for e in entries), error))
    return out


def choose(results: tb.Results, wanted: str | None) -> Subject:
    """The candidate to judge: ``wanted`` (its name in the verdict, or its name in the results where that is
    unambiguous), else the one candidate that is not the reference."""
    subs = subjects(results)
    if wanted:
        exact = [s for s in subs if s.name == wanted] or [s for s in subs if s.candidate == wanted]
        if len(exact) == 1:
            return exact[0]
        if len(exact) > 1:
            raise PolicyError(f"candidate {wanted!r} names {len(exact)} submissions in these results "
                              f"({', '.join(s.name for s in exact)}): say which")
        raise PolicyError(f"candidate {wanted!r} is not in these results (found: "
                          f"{', '.join(s.name for s in subs) or 'none'})")
    others = [s for s in subs if s.candidate != tb.REFERENCE]
    if len(others) == 1:
        return others[0]
    if not others and subs:
        return subs[0]
    raise PolicyError(f"these results hold {len(others)} candidates besides the reference "
                      f"({', '.join(s.name for s in others) or 'none'}): say which with --candidate or the "
                      f"policy's gate.candidate, or judge them all with --all")


def choose_candidate(results: tb.Results, wanted: str | None) -> str:
    """The name (in the verdict) of the candidate :func:`choose` picks."""
    return choose(results, wanted).name


def judged(results: tb.Results, policy: Policy | None = None, candidate: str | None = None) -> list[Subject]:
    """The candidates a gate judges: the one named (argument, else the policy's ``gate.candidate``), else
    every candidate that is not the reference (the reference where it is the only one)."""
    wanted = candidate or (policy.candidate if policy else None)
    if wanted:
        return [choose(results, wanted)]
    subs = subjects(results)
    if not subs:  # nothing judged must never read as "every candidate passed"
        raise PolicyError("these results hold no candidate: no test or benchmark was recorded")
    return [s for s in subs if s.candidate != tb.REFERENCE] or subs[:1]


def latest(tests, labels: set | frozenset):
    """The tests of these entries, one record per test: where files repeat a test, the later file wins
    (a conformance run then a benchmark run, or a rerun, never count a test twice)."""
    t = tests[tests["entry"].isin(labels)]
    return t.sort_values("run", kind="stable").drop_duplicates("nodeid", keep="last").sort_index()


def _missing_feature(row) -> str | None:
    """Which feature a missing test lacked, from its reason (``candidate 'x' has no posenc.sinusoidal``)."""
    return tb.lacked_feature(row.message, row.features)


def _allowed_missing(row, rule: ComponentRule) -> bool:
    if rule.may_be_missing is True:
        return True
    allowed = set(rule.may_be_missing or ())
    lacked = _missing_feature(row)
    if lacked is not None:
        return lacked in allowed
    return any(f in allowed for f in row.features)  # NotImplementedError: any feature it needs may be the one


# ------------------------------------------------------------------------------------------------ evaluate
def evaluate(results: tb.Results, policy: Policy, candidate: str | Subject | None = None) -> Verdict:
    """The policy's verdict on one candidate (a :class:`Subject`, or a name :func:`choose` resolves)."""
    subject = candidate if isinstance(candidate, Subject) else choose(results, candidate or policy.candidate)
    name, labels = subject.name, subject.labels
    entries = [e for e in results.entries if e.label in labels]
    checks: list[Check] = []
    partial = [e.run.path.name for e in entries if e.run.partial]
    if partial:
        checks.append(Check(policy.allow_partial, "complete",
                            f"partial results ({', '.join(partial)})" + (", allowed" if policy.allow_partial else
                                                                         ": the run did not finish")))
    else:
        checks.append(Check(True, "complete", "every results file is complete"))
    sealed, warnings = integrity_checks([e.run for e in entries], policy.require_signed)
    checks += sealed
    if subject.error:
        checks.append(Check(False, "import", f"the candidate could not be imported: {tb.headline(subject.error)}"))
    t = latest(results.conformance, labels)
    bench = results.benchmarks
    bench = bench[bench["entry"].isin(labels)] if not bench.empty else bench
    scores = {}
    for comp, rule in policy.components.items():
        rows = t[t["component"] == comp]
        bonus = rule.extra_credit
        label = f"{comp} (extra credit)" if bonus else comp
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
            ok_detail = f"{passed}/{counted} passed" + _allowed_note(counts, len(bad_missing), rule)
            checks.append(Check(not problems, f"{comp} required", "; ".join(problems) or ok_detail))
        for feature in rule.features:
            frows = rows.loc[rows["features"].map(lambda fs, f=feature: f in fs).astype(bool)]
            frows = frows[~frows["outcome"].isin(tb.SET_APART)]
            bad = frows[frows["outcome"] != "passed"]
            rule_name = f"{feature} required" + (" (extra credit)" if bonus else "")
            if frows.empty:
                checks.append(Check(False, rule_name, "no test of it recorded", bonus))
            elif not bad.empty:
                checks.append(Check(False, rule_name,
                                    f"{len(bad)} of {len(frows)} tests did not pass ({_names(bad['outcome'])})", bonus))
            else:
                checks.append(Check(True, rule_name, f"{len(frows)}/{len(frows)} passed", bonus))
        speedups = {}
        speed_ok = bool(rule.min_speedup)
        for against, minimum in sorted(rule.min_speedup.items()):
            col = f"speedup_vs_{against}"
            b = bench[bench["component"] == comp] if not bench.empty else bench
            values = b[col].tolist() if not b.empty and col in b else []
            geo = tb.geomean(values)
            n = sum(1 for v in values if v is not None and not (isinstance(v, float) and math.isnan(v)))
            speedups[against] = (geo, n)
            rule_name = f"{comp} speed vs {against}" + (" (extra credit)" if bonus else "")
            unmeasured = None
            if failing:
                ok, detail = False, (f"{comp} did not pass conformance ({len(failing)} failed): "
                                     f"its speed does not count")
            elif rows.empty:
                unmeasured = f"no conformance test of {comp} recorded"
            elif not passed:
                unmeasured = f"no test of {comp} passed ({_counts_text(counts)}): nothing to time"
            elif geo is None:
                unmeasured = (f"no benchmark of {comp} measured against {against} in these results "
                              f"(benchmarks: --fmspec-bench, on a device {comp} supports)")
            else:
                ok = geo >= minimum
                detail = f"geometric mean {geo:.2f}× {'≥' if ok else '<'} {minimum:g}× over {n} benchmark(s)"
            if unmeasured is not None:
                speed_ok = False
                if policy.unmeasured_fails(rule):
                    checks.append(Check(False, rule_name, f"not measured: {unmeasured} (unmeasured = \"fail\")"))
                else:
                    lost = "extra credit not earned" if bonus else (
                        f"not applied, its {_pts(rule.speed_points)} speed points not earned" if rule.speed_points
                        else "not applied")
                    warnings.append(f"{rule_name}: not measured: {unmeasured}; {lost}")
                continue
            speed_ok = speed_ok and ok
            checks.append(Check(ok, rule_name, detail + ("" if ok or not bonus else ": not earned"), bonus))
        score = rule.points * passed / counted if counted else 0.0
        score += rule.speed_points if speed_ok else 0.0
        max_score = rule.points + rule.speed_points
        if bonus:
            checks.append(Check(score > 0, f"{label}", f"{passed}/{counted} passed"
                                + _allowed_note(counts, len(bad_missing), rule)
                                + f": {_pts(score)} of {_pts(max_score)} points", True))
        scores[comp] = ComponentScore(comp, score, max_score, counts, counted, failing, bad_missing, speedups, bonus)
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


def _counts_text(counts: dict) -> str:
    return ", ".join(f"{n} {o}" for o, n in counts.items()) or "no tests"


def _allowed_note(counts: dict, bad_missing: int, rule: ComponentRule) -> str:
    notes = []
    allowed = counts.get("missing", 0) - bad_missing
    if allowed:
        notes.append(f"{allowed} missing allowed")
    if counts.get("unsupported") and rule.allow_unsupported:
        notes.append(f"{counts['unsupported']} unsupported")
    if tb.set_apart(counts):
        notes.append(f"{tb.set_apart(counts)} skipped")
    return f" ({', '.join(notes)})" if notes else ""


# --------------------------------------------------------------------------------------------------- class
@dataclass
class ClassRow:
    """One candidate's line of a class table (see :func:`class_table`)."""

    name: str                 # unique in the results: the candidate's name, or the end of its path
    score: float              # points earned, extra credit included
    max_score: float          # points available, extra credit not included
    extra_score: float        # of which extra credit
    passed: bool              # the policy is met
    failed: list[str]         # what failed: components (``attention``), else ``complete``, ``import``, ``score``
    speedups: dict[str, float | None]   # "flash vs reference" -> geometric mean (None: not measured)
    partial: bool             # a results file of it is partial
    files: list[str]          # the results files that hold it
    verdict: Verdict          # everything else: every rule's line, the warnings, per-component scores

    @property
    def percent(self) -> float:
        return 100 * self.score / self.max_score if self.max_score else 0.0

    def as_dict(self) -> dict:
        """One flat row (a CSV line): name, score, max_score, percent, extra_credit, verdict, failed,
        partial, files, then ``speed <component> vs <baseline>`` for each speed rule of the policy."""
        row = {"name": self.name, "score": round(float(self.score), 4), "max_score": round(float(self.max_score), 4),
               "percent": round(float(self.percent), 2), "extra_credit": round(float(self.extra_score), 4),
               "verdict": "passed" if self.passed else "failed", "failed": "; ".join(self.failed),
               "partial": self.partial, "files": "; ".join(self.files)}
        for key, value in self.speedups.items():
            row[f"speed {key}"] = None if value is None else round(value, 4)
        return row


def class_table(results: tb.Results, policy: Policy, candidates: list[str] | None = None) -> list[ClassRow]:
    """The policy's verdict on every candidate: ``candidates`` (names as :func:`choose` takes them), else
    every candidate that is not the reference; one :class:`ClassRow` each, in the order of the results.

    ``speedups`` has a key per speed rule of the policy (``"flash vs reference"``), the same in every row:
    the geometric mean of the candidate's speedups, None where nothing was measured."""
    subs = [choose(results, c) for c in candidates] if candidates else judged(results, policy)
    rows = []
    for s in subs:
        v = evaluate(results, policy, s)
        speed = {}
        for comp, rule in policy.components.items():
            for against in sorted(rule.min_speedup):
                speed[f"{comp} vs {against}"] = v.scores[comp].speedups.get(against, (None, 0))[0]
        entries = [e for e in results.entries if e.label in s.labels]
        rows.append(ClassRow(s.name, v.score, v.max_score, v.extra_score, v.passed, v.failed_components(), speed,
                             any(e.run.partial for e in entries),
                             list(dict.fromkeys(str(e.run.path) for e in entries)), v))
    return rows


def class_text(rows: list[ClassRow], policy: Policy) -> str:
    """The class table for a terminal: a head line, then one verdict line per candidate::

        fmspec gate: 1 of 2 candidates passed, policy 'course' (reports/policies/course.toml)
          PASSED  alice/mine  90/90 (100.0%) +5 extra credit  flash vs reference 0.82×
          FAILED  bob/mine    40/90 (44.4%)  failed: attention, bpe  flash vs reference –
    """
    ok = sum(r.passed for r in rows)
    lines = [f"fmspec gate: {ok} of {len(rows)} candidate{'s' if len(rows) != 1 else ''} passed, "
             f"policy {policy.name!r} ({policy.path})"]
    width = max((len(r.name) for r in rows), default=0)
    for r in rows:
        parts = [f"  {'PASSED' if r.passed else 'FAILED'}  {r.name:<{width}}"]
        if r.max_score or r.verdict.extra_max:
            parts.append(f"{_pts(r.score)}/{_pts(r.max_score)} ({r.percent:.1f}%)"
                         + (f" +{_pts(r.extra_score)} extra credit" if r.extra_score else ""))
        if r.failed:
            parts.append("failed: " + ", ".join(r.failed))
        if r.partial:
            parts.append("partial")
        parts += [f"{k} {tb.format_number(v, 'speedup_vs_')}" for k, v in r.speedups.items()]
        if r.verdict.warnings:
            parts.append(f"{len(r.verdict.warnings)} warning{'s' if len(r.verdict.warnings) != 1 else ''}")
        lines.append("  ".join(parts))
    return "\n".join(lines) + "\n"


def class_csv(rows: list[ClassRow]) -> str:
    """The class table as CSV (one header line, one line a candidate; columns of :meth:`ClassRow.as_dict`)."""
    import csv
    import io

    dicts = [r.as_dict() for r in rows]
    fields = list(dict.fromkeys(k for d in dicts for k in d)) or ["name", "score", "max_score", "percent",
                                                                   "extra_credit", "verdict", "failed", "partial",
                                                                   "files"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for d in dicts:
        writer.writerow({k: ("" if v is None else v) for k, v in d.items()})
    return buf.getvalue()
