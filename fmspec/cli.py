"""The ``fmspec`` command: a convenience over pytest and the results tools, never a second harness.

    fmspec run [COMPONENT ...] [PYTEST OPTION ...]   the installed suites under pytest
    fmspec list                                      installed candidates and the components
    fmspec template DIR                              a new candidate: a copy of the template package
    fmspec grade SUBMISSIONS [--out DIR] ...         a class: one isolated run per submission, class table
    fmspec report RESULTS... -o report.html          one self-contained HTML report
    fmspec gate RESULTS... --policy POLICY           exit 1 when the policy is not met
    fmspec export {gradescope,junit,markdown} RESULTS... -o OUT

``fmspec run attention flash --candidate mine -n auto`` is exactly
``pytest --pyargs fmspec.suites.test_attention fmspec.suites.test_flash --candidate mine -n auto``: every
option after the components goes to pytest unchanged, and the exit status is pytest's. ``python -m
fmspec ...`` is the same command.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

from fmspec import COMPONENTS

RUN_USAGE = """usage: fmspec run [COMPONENT ...] [PYTEST OPTION ...]

Run fmspec's suites under pytest: every suite, or the named components' ({components}).
Every other argument goes to pytest unchanged, e.g.:

  fmspec run --candidate ./mine                 every suite on a candidate folder
  fmspec run attention --candidate mine -n auto  one component, in parallel
  fmspec run --candidate mine --fmspec-bench    conformance, then the benchmarks of what passed

This is `pytest --pyargs fmspec.suites ...`; `pytest --help` lists every option (fmspec's under "fmspec").
"""


def parser() -> argparse.ArgumentParser:
    from fmspec.reports import cli as reports_cli

    p = argparse.ArgumentParser(prog="fmspec", description="fmspec: the conformance and benchmark suite for the building blocks of foundation models",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="run `fmspec COMMAND --help` for a command's options")
    p.add_argument("--version", action="version", version=f"fmspec {_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="{run,list,template,grade,report,gate,export}")
    sub.add_parser("run", help="run the suites under pytest (options passed through to pytest)", add_help=False)
    sub.add_parser("list", help="installed candidates and the components").set_defaults(handler=_list)
    t = sub.add_parser("template", help="start a candidate: copy the template (every contract function, documented "
                                        "and unimplemented) into a new folder")
    t.add_argument("folder", metavar="DIR", help="the new candidate's package folder (must not exist)")
    t.set_defaults(handler=_template)
    from fmspec import grade

    g = sub.add_parser("grade", help="grade a class: one isolated run per submission, in parallel; class table, "
                                     "report, Gradescope files", description=grade.__doc__.split("\n\n")[0],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    grade.add_arguments(g)
    g.set_defaults(handler=grade.main)
    reports_cli.add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `fmspec gate ... | head`: the reader left; Python's documented way out
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _main(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "run":  # pytest parses these: argparse would reject its options
        return run(argv[1:])
    args = parser().parse_args(argv)
    if args.command in ("list", "template", "grade"):
        return args.handler(args)
    from fmspec.reports import cli as reports_cli

    return reports_cli.handle(args)


def run(args: list[str]) -> int:
    """``pytest --pyargs <the suites of the named components> <args>``; pytest's exit status."""
    if args and args[0] in ("-h", "--help"):
        print(RUN_USAGE.format(components=", ".join(COMPONENTS)), end="")
        return 0
    components = []
    while args and not args[0].startswith("-"):
        name = args.pop(0)
        if name not in COMPONENTS:
            print(f"fmspec run: error: no component {name!r} (components: {', '.join(COMPONENTS)}); "
                  f"pytest options start with -", file=sys.stderr)
            return 4  # pytest's usage-error status
        components.append(name)
    bench = "--fmspec-bench" in args
    targets = suite_modules(components, bench=bench)
    import pytest

    return int(pytest.main(["--pyargs", *targets, *quiet_benchmark(bench), *args]))


def quiet_benchmark(bench: bool) -> list[str]:
    """Without ``--fmspec-bench`` no benchmark runs (the plugin deselects them), so pytest-benchmark is not
    loaded: its header line and its xdist warning stay out of the run."""
    return [] if bench else ["-p", "no:benchmark"]


def suite_modules(components: list[str], bench: bool) -> list[str]:
    """The importable names of the suites (all of them, or the named components' test and bench modules)."""
    if not components:
        return ["fmspec.suites"]
    names = []
    for component in components:
        kinds = ("test", "bench") if bench else ("test",)
        names += [f"fmspec.suites.{kind}_{component}" for kind in kinds
                  if importlib.util.find_spec(f"fmspec.suites.{kind}_{component}") is not None]
    return names


def _list(args: argparse.Namespace) -> int:
    from fmspec import loader

    lines = loader.describe_installed()
    print("installed candidates (entry point group fmspec.candidates):")
    print("\n".join("  " + line for line in lines) if lines else "  none")
    print("also accepted by --candidate: package.module[:attr], or a path to a .py file or package folder")
    print(f"components: {', '.join(COMPONENTS)}")
    return 0


def _template(args: argparse.Namespace) -> int:
    import shutil
    from pathlib import Path

    import fmspec.candidates.template as template

    target = Path(args.folder)
    if target.exists():
        print(f"fmspec template: error: {target} already exists", file=sys.stderr)
        return 2
    shutil.copytree(Path(template.__file__).parent, target, ignore=shutil.ignore_patterns("__pycache__"))
    shown = target.as_posix() if target.is_absolute() else f"./{target.as_posix()}"  # --candidate: a path has a /
    print(f"fmspec template: wrote {shown}/ ({len(list(target.glob('*.py')))} modules, all unimplemented); "
          f"try it with: fmspec run --candidate {shown}")
    return 0


def _version() -> str:
    import fmspec

    return fmspec.__version__


if __name__ == "__main__":
    sys.exit(main())
