"""The results commands of ``fmspec`` (see :mod:`fmspec.cli`): report, gate, export.

    fmspec report RESULTS... -o report.html [--title TEXT]
    fmspec gate RESULTS... --policy POLICY [--candidate NAME | --all [-v]]
    fmspec export {gradescope,junit,markdown} RESULTS... -o OUT [--policy POLICY] [--candidate NAME | --all]

A class (one results file per submission): ``gate --all`` (also without ``--candidate`` where the results
hold several candidates besides the reference) prints one verdict line per candidate and exits 1 if any
fails; ``export gradescope --all -o DIR`` writes ``DIR/<candidate>.json`` for each.

``python -m fmspec.reports ...`` is the same command. ``--policy`` takes a file or the name of a policy
shipped with fmspec (``course``, ``team``: ``reports/policies/``).

Exit status: 0 done (gate: the policy is met), 1 the gate's policy is not met, 2 bad input (a missing or
unreadable file, a results file of another schema version, JSON with nothing usable in it, a policy
naming an unknown component, the ``reports`` extra not installed): one line on stderr says which file and
what is wrong. A results file cut short is still reported, marked partial, with a note on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from fmspec.reports import schema

PROG = "fmspec"
POLICIES = Path(__file__).resolve().parent / "policies"
# what the report commands import beyond fmspec's core dependencies (the "reports" extra)
EXTRA = ("pandas", "jinja2", "matplotlib")


class InputError(Exception):
    """Bad input the user must fix; the message is one line."""


def add_commands(sub: argparse._SubParsersAction) -> None:  # argparse documents add_subparsers' return only by use
    """The report, gate and export subcommands, added to ``fmspec``'s parser."""
    b = sub.add_parser("report", aliases=["build"], help="one self-contained HTML report comparing results files")
    b.add_argument("results", nargs="+", metavar="RESULTS", help="fmspec results files (JSON)")
    b.add_argument("-o", "--output", required=True, metavar="HTML", help="where to write the report")
    b.add_argument("--title", help="the report's title (default: the candidates' names)")
    b.set_defaults(handler=_build)

    g = sub.add_parser("gate", help="check results against a policy; exit 1 when it is not met")
    g.add_argument("results", nargs="+", metavar="RESULTS")
    g.add_argument("--policy", required=True, metavar="TOML",
                   help=f"policy file, or a shipped policy's name ({', '.join(shipped_policies())})")
    g.add_argument("--candidate", help="the candidate to judge (default: the policy's, else every one that is not "
                                       "the reference)")
    g.add_argument("--all", action="store_true", help="judge every candidate that is not the reference: one verdict "
                                                      "line each; exit 1 if any fails")
    g.add_argument("-v", "--verbose", action="store_true", help="with several candidates: every rule of each verdict "
                                                                "after the table")
    g.add_argument("--require-signed", action="store_true",
                   help="fail a results file not signed with this machine's key (an edited one always fails)")
    g.set_defaults(handler=_gate)

    e = sub.add_parser("export", help="Gradescope results.json, JUnit XML or a Markdown summary")
    e.add_argument("format", choices=("gradescope", "junit", "markdown"))
    e.add_argument("results", nargs="+", metavar="RESULTS")
    e.add_argument("-o", "--output", required=True, metavar="OUT", help="output file ('-' for stdout)")
    e.add_argument("--policy", metavar="TOML", help="points and rules (gradescope scores, markdown verdict)")
    e.add_argument("--candidate", help="gradescope: the candidate to grade (default as for gate)")
    e.add_argument("--all", action="store_true", help="gradescope: one results.json per candidate that is not the "
                                                      "reference, OUT/<candidate>.json (OUT a directory)")
    e.set_defaults(handler=_export)


def shipped_policies() -> list[str]:
    return sorted(p.stem for p in POLICIES.glob("*.toml"))


def handle(args: argparse.Namespace) -> int:
    """Run a parsed report/gate/export command; bad input becomes one line on stderr and exit status 2."""
    try:
        return args.handler(args)
    except (schema.ResultsError, InputError) as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if exc.name not in EXTRA:
            raise
        print(f"{PROG} {args.command}: error: needs {exc.name}, part of the reports extra: "
              f"pip install 'fmspec[reports]'", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    """The report commands alone (``fmspec.cli.main`` takes the same arguments, and run and list)."""
    from fmspec import cli

    return cli.main(argv)


def _load(paths: list[str]):
    from fmspec import integrity
    from fmspec.reports import tables

    runs = tables.load_runs(paths)
    for run in runs:
        for note in run.doc.get("notes", []):
            print(f"{PROG}: note: {run.path}: {note}; reported as partial", file=sys.stderr)
        if run.integrity == integrity.EDITED:
            print(f"{PROG}: warning: {run.path}: edited after the run or cut short (its digest does not match); "
                  f"reported with an 'edited' mark, and the gate fails it", file=sys.stderr)
    return tables.Results(runs)


def _write(path: str, text: str) -> None:
    if path == "-":
        _print(text)
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

    if not Path(path).exists() and path in shipped_policies():
        path = str(POLICIES / f"{path}.toml")
    try:
        return gate.load_policy(path)
    except gate.PolicyError as exc:
        raise InputError(str(exc)) from None


def _gate(args) -> int:
    from fmspec.reports import gate

    if args.all and args.candidate:
        raise InputError("--all and --candidate exclude each other")
    policy = _policy(args.policy)
    policy.require_signed = policy.require_signed or args.require_signed
    results = _load(args.results)
    try:
        # --all: every candidate but the reference (a policy's gate.candidate aside)
        subjects = gate.judged(results) if args.all else gate.judged(results, policy, args.candidate)
        if len(subjects) == 1 and not args.all:
            verdict = gate.evaluate(results, policy, subjects[0])
            _print(verdict.text())
            return 0 if verdict.passed else 1
        rows = gate.class_table(results, policy, [s.name for s in subjects])
    except gate.PolicyError as exc:
        raise InputError(str(exc)) from None
    _print(gate.class_text(rows, policy))
    if args.verbose:
        for r in rows:
            _print("\n" + r.verdict.text())
    return 0 if all(r.passed for r in rows) else 1


def _print(text: str) -> None:
    """stdout, where a closed pipe (``| head``) ends the output quietly rather than in a traceback."""
    try:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # stdout's reader is gone: point stdout at devnull so that the flush at exit does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _export(args) -> int:
    from fmspec.reports import export, gate

    if args.all and (args.format != "gradescope" or args.candidate):
        raise InputError("--all is for gradescope, without --candidate (junit and markdown cover every candidate)")
    policy = _policy(args.policy) if args.policy else None
    results = _load(args.results)
    try:
        if args.all:
            docs = export.gradescope_all(results, policy)
        else:
            text = export.render(args.format, results, policy=policy, candidate=args.candidate)
    except gate.PolicyError as exc:
        raise InputError(str(exc)) from None
    if not args.all:
        _write(args.output, text)
        return 0
    if args.output == "-":
        raise InputError("--all writes one file per candidate: -o names a directory")
    out = Path(args.output)
    names = export.file_names(list(docs))
    for name, doc in docs.items():
        _write(str(out / names[name]), export.dumps(doc))
    print(f"{PROG}: wrote {len(docs)} Gradescope file(s) to {out}", file=sys.stderr)
    return 0
