"""The command line: ``python -m reports {build,gate,export} ...``.

    python -m reports build RESULTS... -o report.html [--title TEXT]
    python -m reports gate RESULTS... --policy POLICY [--candidate NAME]
    python -m reports export {gradescope,junit,markdown} RESULTS... -o OUT [--policy POLICY] [--candidate NAME]

Exit status: 0 done (gate: the policy is met), 1 the gate's policy is not met, 2 bad input (a missing or
unreadable file, a results file of another schema version, JSON with nothing usable in it, a policy
naming an unknown component): one line on stderr says which file and what is wrong. A results file cut
short is still reported, marked partial, with a note on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fmspec.reports import schema

PROG = "python -m reports"


class InputError(Exception):
    """Bad input the user must fix; the message is one line."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="fmspec results: HTML report, CI gate, exports")
    sub = p.add_subparsers(dest="command", required=True, metavar="{build,gate,export}")

    b = sub.add_parser("build", help="one self-contained HTML report comparing results files")
    b.add_argument("results", nargs="+", metavar="RESULTS", help="fmspec results files (JSON)")
    b.add_argument("-o", "--output", required=True, metavar="HTML", help="where to write the report")
    b.add_argument("--title", help="the report's title (default: the candidates' names)")

    g = sub.add_parser("gate", help="check results against a policy; exit 1 when it is not met")
    g.add_argument("results", nargs="+", metavar="RESULTS")
    g.add_argument("--policy", required=True, metavar="TOML", help="policy file (see reports/policies/)")
    g.add_argument("--candidate", help="the candidate to judge (default: the policy's, else the one that is not "
                                       "the reference)")

    e = sub.add_parser("export", help="Gradescope results.json, JUnit XML or a Markdown summary")
    e.add_argument("format", choices=("gradescope", "junit", "markdown"))
    e.add_argument("results", nargs="+", metavar="RESULTS")
    e.add_argument("-o", "--output", required=True, metavar="OUT", help="output file ('-' for stdout)")
    e.add_argument("--policy", metavar="TOML", help="points and rules (gradescope scores, markdown verdict)")
    e.add_argument("--candidate", help="gradescope: the candidate to grade (default as for gate)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "build":
            return _build(args)
        if args.command == "gate":
            return _gate(args)
        return _export(args)
    except (schema.ResultsError, InputError) as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _load(paths: list[str]):
    from fmspec.reports import tables

    runs = tables.load_runs(paths)
    for run in runs:
        for note in run.doc.get("notes", []):
            print(f"{PROG}: note: {run.path}: {note}; reported as partial", file=sys.stderr)
    return tables.Results(runs)


def _write(path: str, text: str) -> None:
    if path == "-":
        sys.stdout.write(text)
        return
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8", newline="\n")
    except OSError as exc:
        raise InputError(f"{out}: cannot write ({exc.strerror or exc})") from None


def _build(args) -> int:
    from fmspec.reports import html

    results = _load(args.results)
    text = html.render(results, title=args.title)
    _write(args.output, text)
    print(f"{PROG}: wrote {args.output} ({len(text.encode('utf-8')) // 1024} KiB, {len(results.entries)} "
          f"candidate(s), {len(results.runs)} file(s))", file=sys.stderr)
    return 0


def _policy(path: str):
    from fmspec.reports import gate

    try:
        return gate.load_policy(path)
    except gate.PolicyError as exc:
        raise InputError(str(exc)) from None


def _gate(args) -> int:
    from fmspec.reports import gate

    policy = _policy(args.policy)
    results = _load(args.results)
    try:
        verdict = gate.evaluate(results, policy, candidate=args.candidate)
    except gate.PolicyError as exc:
        raise InputError(str(exc)) from None
    print(verdict.text())
    return 0 if verdict.passed else 1


def _export(args) -> int:
    from fmspec.reports import export, gate

    policy = _policy(args.policy) if args.policy else None
    results = _load(args.results)
    try:
        text = export.render(args.format, results, policy=policy, candidate=args.candidate)
    except gate.PolicyError as exc:
        raise InputError(str(exc)) from None
    _write(args.output, text)
    return 0
