"""The results file: one versioned JSON document per run.

Layout (``schema: "fmspec-results"``, ``version: 1``), every field the writer emits::

    {
      "schema": "fmspec-results", "version": 1,
      "status": "running" | "complete" | "interrupted",   # anything but "complete" is a partial run
      "started": ISO-8601, "finished": ISO-8601 | null,
      "environment": {"python", "platform", "torch", "triton", "device", "cpu_count", "commit", "hostname"},
      "run": {"fmspec", "args", "profile", "seed", "seed_id", "bench"},   # seed "hidden" for --fmspec-hidden-seed,
                                                               # seed_id: integrity.seed_id(the seed)
      "candidates": [{"name", "source", "version", "error", "flags"}],
      "tests": [{"nodeid", "candidate", "component", "features", "property", "params", "outcome",
                 "duration", "message", "example", "reproduce", "metrics", "flags"}],
      "benchmarks": [{"nodeid", "name", "group", "candidate", "component", "params", "stats", "extra_info"}],
      "summary": {"<candidate>": {"<component>": {"<outcome>": count}}},
      "integrity": {"algorithm": "hmac-sha256", "key_id", "digest"}   # fmspec/integrity.py
    }

A missing, unsupported or skipped test's ``message`` is its reason; :func:`load` reads it in one form
(:func:`reason`: the exception names older harnesses put in front of it removed), so that files of any
version list a function once.

``params`` values are strings (``str(value)`` without a ``torch.`` prefix: ``float32``, ``cuda``); a
candidate's ``error`` is set when it could not be imported, and ``flags`` (on candidates and tests) name
suspicious behaviour (docs/trust.md). ``benchmarks`` are pytest-benchmark's statistics of each benchmark
test (``stats``: min, max, mean, median, ... in seconds; ``extra_info``: what the benchmark recorded). A
device-timed (GPU) benchmark records its device timing (CUDA events, ``triton.testing.do_bench``) in
``extra_info["device_time"]`` (``median_ms``, ``p20_ms``, ``p80_ms``, ``timer``); its ``stats`` are then
that timing, ``{"median", "p20", "p80", "timer", "host"}`` in seconds, with pytest-benchmark's own host-clock
statistics of the same call (a few rounds, each followed by a device synchronisation) under ``host``: the
``median`` that reports compare is always the device median. Files written before this carry a single
round whose every statistic is the device median.

Why a writer of its own rather than pytest's reporting (``user_properties``, pytest-reportlog's JSONL): the
file must be one self-describing document that ``report``/``gate`` read as is (environment, candidates,
run settings, benchmark statistics and a per-candidate summary beside the tests), written only by the
process that sees every test (the xdist controller), readable at every moment of a run, and kept apart
from pytest's own report objects, whose layout is pytest's to change. pytest-reportlog's JSONL is
crash-safe by construction but holds none of the run-level fields and one line per phase, not per test;
the journal below gives the same crash safety.

Crash safety: the writer keeps the file a valid document at every moment (each rewrite goes to a
temporary file, then ``os.replace``), rewriting it at most every ``interval`` seconds and once at the end;
every test record is also appended at once to a journal beside it (``<path>.journal``, one JSON object a
line), which the final rewrite removes. A run killed half-way leaves the file with status ``running`` and
the journal: :func:`load` merges the two and marks the run partial, so no finished test is lost.

Integrity: each rewrite carries an HMAC-SHA256 of the document keyed by the grader's secret
(:mod:`fmspec.integrity`); :func:`load` verifies it and sets ``integrity`` to ``valid``, ``edited``,
``unsigned`` or ``other key`` (a file cut short cannot be verified: ``edited``). The journal of a run that
never finished is not signed: its records count only as a partial run's.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from fmspec import integrity

SCHEMA = "fmspec-results"
VERSION = 1
FINAL_STATUSES = ("complete", "interrupted")


class ResultsError(Exception):
    """A results file that cannot be used; the message names the file and the problem."""


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def summarize(tests: list[dict]) -> dict:
    """Counts of outcomes per candidate and component."""
    counts: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for t in tests:
        counts[t["candidate"] or "-"][t["component"] or "-"][t["outcome"]] += 1
    return {c: {comp: dict(sorted(n.items())) for comp, n in sorted(comps.items())} for c, comps in sorted(counts.items())}


class ResultsWriter:
    """Accumulates records and keeps ``path`` an up-to-date, valid JSON document."""

    def __init__(self, path: str | os.PathLike, interval: float = 2.0, secret: bytes | None = None):
        self.path = Path(path)
        self.secret = secret  # the integrity key; None writes an unsigned file
        self.journal = journal_path(self.path)
        self.interval = interval
        self._journal = None
        self._last = 0.0
        self.doc: dict[str, Any] = {
            "schema": SCHEMA,
            "version": VERSION,
            "status": "running",
            "started": now(),
            "finished": None,
            "environment": {},
            "run": {},
            "candidates": [],
            "tests": [],
            "benchmarks": [],
            "summary": {},
        }

    def start(self, environment: dict, run: dict, candidates: list[dict]) -> None:
        self.doc.update(environment=environment, run=run, candidates=candidates)
        self.flush(force=True)
        self._journal = open(self.journal, "w", encoding="utf-8")  # noqa: SIM115 (closed in finish)

    def add_test(self, record: dict) -> None:
        self.doc["tests"].append(record)
        if self._journal is not None:
            self._journal.write(json.dumps(record, default=str) + "\n")
            self._journal.flush()
        self.flush()

    def add_benchmark(self, record: dict) -> None:
        self.doc["benchmarks"].append(record)

    def finish(self, status: str) -> None:
        self.doc["status"] = status
        self.doc["finished"] = now()
        self.flush(force=True)
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        self.journal.unlink(missing_ok=True)

    def flush(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._last < self.interval:
            return
        self.doc["summary"] = summarize(self.doc["tests"])
        if self.secret is not None:
            self.doc[integrity.FIELD] = integrity.sign(self.doc, self.secret)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".fmspec-", suffix=".json", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.doc, fh, indent=1, default=str)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._last = time.monotonic()


# the fields every test record must hold to be reported (the writer's other fields default to None)
TEST_KEYS = ("nodeid", "candidate", "component", "property", "outcome")
TEST_DEFAULTS = {"features": [], "params": {}, "duration": 0.0, "message": None, "example": None, "reproduce": None,
                 "metrics": None, "flags": []}


def load(path: str | os.PathLike) -> dict:
    """Read and validate a results file; a run that never finished comes back with ``partial: True``.

    A file cut short (a copy that stopped half-way, a full disk) is read up to its last complete record:
    it comes back with ``partial: True`` and ``truncated: True``, and ``notes`` says what was lost. A file
    with nothing usable (not JSON at all, no schema header) raises :class:`ResultsError`.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ResultsError(f"{path}: not a text file (invalid UTF-8)") from None
    notes: list[str] = []
    try:
        doc = json.loads(text)
        truncated = False
    except json.JSONDecodeError as exc:
        doc = _recover(text)
        if doc is None:
            raise ResultsError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        truncated = True
        notes.append(f"file truncated at line {exc.lineno}: read up to its last complete record")
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ResultsError(f"{path}: not an fmspec results file (schema {doc.get('schema') if isinstance(doc, dict) else None!r})")
    if doc.get("version") != VERSION:
        raise ResultsError(f"{path}: results schema version {doc.get('version')!r} is not supported (this fmspec reads {VERSION})")
    sealed = integrity.EDITED if truncated else integrity.verify(doc, integrity.key())
    if truncated:  # what the cut took away is empty, not invalid
        for key, kind in (("tests", list), ("benchmarks", list), ("candidates", list), ("environment", dict), ("run", dict)):
            doc.setdefault(key, kind())
    doc.setdefault("benchmarks", [])
    for key, kind in (("tests", list), ("benchmarks", list), ("candidates", list), ("environment", dict), ("run", dict)):
        if not isinstance(doc.get(key), kind):
            raise ResultsError(f"{path}: field {key!r} must be a {kind.__name__}")
    if doc.get("status") not in FINAL_STATUSES:  # the journal holds the tests finished after the last rewrite
        doc["tests"] = _merge_journal(doc["tests"], journal_path(path))
    tests = []
    for rec in doc["tests"]:
        if isinstance(rec, dict) and all(k in rec for k in TEST_KEYS):
            rec = {**TEST_DEFAULTS, **rec}
            rec["message"] = reason(rec["outcome"], rec["message"])
            tests.append(rec)
    if len(tests) < len(doc["tests"]):
        notes.append(f"{len(doc['tests']) - len(tests)} incomplete test record(s) left out")
    doc["tests"] = tests
    doc["benchmarks"] = [_benchmark(b, tests) for b in doc["benchmarks"] if isinstance(b, dict)]
    doc["summary"] = summarize(tests)
    doc["partial"] = truncated or doc.get("status") != "complete"
    doc["truncated"] = truncated
    if doc.get("status") == "interrupted":  # Ctrl-C, an internal error, or a KeyboardInterrupt from candidate code
        notes.append("run interrupted: the tests after that point did not run")
    elif doc.get("status") not in FINAL_STATUSES:
        notes.append(f"run status {doc.get('status')!r}: the run did not finish")
    doc["notes"] = notes
    doc["integrity"] = sealed
    return doc


# the exception names the harness has put in front of a missing/unsupported reason, in every version
# that wrote results: "Missing: ", "fmspec.outcomes.Missing: ", "suites.outcomes.Missing: Missing: ", ...
_OUTCOME_PREFIX = re.compile(r"^(?:(?:[A-Za-z_][\w]*\.)*(?:Missing|Unsupported|Skipped):[ \t]*)+")


def reason(outcome: str, message: str | None) -> str | None:
    """A missing or unsupported test's reason in one form, whatever wrote it: the exception names in
    front of it removed. ``suites.outcomes.Missing: Missing: NotImplementedError: posenc.sinusoidal`` and
    ``Missing: NotImplementedError: posenc.sinusoidal`` -> ``NotImplementedError: posenc.sinusoidal``;
    ``fmspec.outcomes.Missing: candidate 'x' has no bpe.train`` -> ``candidate 'x' has no bpe.train``.
    Other outcomes' messages are kept as written."""
    if outcome not in ("missing", "unsupported", "skipped") or not isinstance(message, str):
        return message
    return _OUTCOME_PREFIX.sub("", message, count=1) or message


def journal_path(path: Path) -> Path:
    """Where the writer appends each test record as it finishes (removed when the run ends)."""
    return path.with_name(path.name + ".journal")


def _merge_journal(tests: list, journal: Path) -> list:
    """The snapshot's tests plus those only the journal holds (a torn last line is dropped)."""
    if not journal.exists():
        return tests
    by_id = {t.get("nodeid") if isinstance(t, dict) else id(t): t for t in tests}
    for line in journal.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and "nodeid" in rec:
            by_id[rec["nodeid"]] = rec
    return list(by_id.values())


def _benchmark(rec: dict, tests: list[dict]) -> dict:
    """A benchmark record with its candidate's name and component, found through its test record.

    pytest-benchmark knows neither: the plugin stores ``str(candidate)``, and the component is the test's.
    """
    rec = {"nodeid": None, "name": None, "group": None, "candidate": None, "component": None, "params": {},
           "stats": {}, "extra_info": {}, **rec}
    test = next((t for t in tests if t["nodeid"] == rec["nodeid"]), None)
    if test is not None:
        rec["candidate"] = test["candidate"]
        rec["component"] = rec["component"] or test["component"]
        rec["metrics"] = rec.get("metrics") or test.get("metrics")
    cand = rec["candidate"]
    if isinstance(cand, str) and cand.startswith("Candidate(name="):
        rec["candidate"] = cand[len("Candidate(name="):].split(",")[0].strip("'\"")
    if not rec["component"]:
        stem = str(rec["nodeid"] or "").split("::")[0].rpartition("/")[2].removesuffix(".py")
        rec["component"] = stem.removeprefix("bench_").removeprefix("test_") or None
    rec["stats"] = rec["stats"] if isinstance(rec["stats"], dict) else {}
    rec["extra_info"] = rec["extra_info"] if isinstance(rec["extra_info"], dict) else {}
    return rec


def _recover(text: str) -> dict | None:
    """The longest prefix of a cut JSON document that ends on a complete value, closed and parsed.

    Scans once, tracking open brackets outside strings; a comma or a closing bracket inside a container
    is a place where everything before it is complete, so the text up to there plus the closing brackets
    of the containers still open is valid JSON. ``{"a": [1, {"b": 2}, {"c"`` -> ``{"a": [1, {"b": 2}]}``.
    """
    stack: list[str] = []
    in_string = escaped = False
    cut = None
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append(ch)
        elif ch in "}]":
            if not stack:
                return None
            stack.pop()
            if not stack:
                return None  # the document closed: the fault is elsewhere, nothing to recover
            cut = (i + 1, "".join("}" if c == "{" else "]" for c in reversed(stack)))
        elif ch == "," and stack:
            cut = (i, "".join("}" if c == "{" else "]" for c in reversed(stack)))
    if cut is None:
        return None
    try:
        doc = json.loads(text[:cut[0]] + cut[1])
    except json.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None
