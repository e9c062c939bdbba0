"""Isolated grading (--fmspec-isolate, fmspec/isolate.py): the same verdicts for an honest candidate, and
every cheat of tests/cheaters/ fails or is flagged with its reason."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from fmspec.reports import schema

ROOT = Path(__file__).resolve().parents[1]
SUITES = ROOT / "suites"
CHEATERS = Path(__file__).resolve().parent / "cheaters"


def run_suite(pytester: pytest.Pytester, suites: list[str], *args: str, results: str = "r.json", env: dict | None = None):
    """Run the checkout's suites (by path) from pytester's folder; returns (result, results document)."""
    for key, value in (env or {}).items():
        pytester._monkeypatch.setenv(key, value)
    paths = [str(SUITES / f"test_{s}.py") for s in suites]
    res = pytester.runpytest_subprocess(*paths, "--fmspec-results", results, "-p", "no:cacheprovider",
                                        "--rootdir", str(ROOT), *args, timeout=600)
    return res, schema.load(pytester.path / results)


def outcomes(doc: dict, candidate: str | None = None) -> dict[str, str]:
    return {t["nodeid"].split("::", 1)[1]: t["outcome"] for t in doc["tests"]
            if candidate is None or t["candidate"] == candidate}


def by_candidate(doc: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for t in doc["tests"]:
        out.setdefault(t["candidate"], []).append(t)
    return out


def test_reference_gets_the_same_verdicts_isolated_and_in_process(pytester):
    _, plain = run_suite(pytester, ["posenc", "attention"], results="plain.json")
    res, isolated = run_suite(pytester, ["posenc", "attention"], "--fmspec-isolate", results="iso.json")
    assert outcomes(plain) == outcomes(isolated)
    assert set(outcomes(isolated).values()) == {"passed"}
    assert "runs in a process of its own: sandboxed" in res.stdout.str()


# a sample of the mutants: each component's suites below, bugs of several kinds (a value, a dtype, a frozen
# flag, a merge, an error message, a layout)
SAMPLE_MUTANTS = ["posenc_float32", "posenc_errors_unnamed", "lora_base_not_frozen", "lora_merge_not_idempotent",
                  "vit_patches_column_major", "vit_interpolate_align_corners"]


def test_torch_native_and_mutants_get_the_same_verdicts_isolated_and_in_process(pytester):
    """Every test's outcome, for torch_native and a sample of mutants, is the same in both modes: the
    proxies change nothing an honest candidate does, and the mutants fail the same tests for the same
    reasons (each failure's first line)."""
    mutants = ROOT / "candidates" / "mutants"
    cands = [a for m in SAMPLE_MUTANTS for a in ("--candidate", str(mutants / f"{m}.py"))]
    common = ["posenc", "lora", "vit"]
    _, plain = run_suite(pytester, common, "--candidate", "torch_native", *cands, results="plain.json")
    _, isolated = run_suite(pytester, common, "--candidate", "torch_native", *cands, "--fmspec-isolate",
                            results="iso.json")

    def verdicts(doc):
        return {(t["candidate"], t["nodeid"].split("::", 1)[1]): (t["outcome"], (t["message"] or "").split("\n")[0])
                for t in doc["tests"]}

    a, b = verdicts(plain), verdicts(isolated)
    assert a.keys() == b.keys()
    differ = {k: (a[k], b[k]) for k in a if a[k][0] != b[k][0]}
    assert not differ, differ
    assert {c for c, _ in a} == {"torch_native", *SAMPLE_MUTANTS}
    for m in SAMPLE_MUTANTS:
        assert any(a[k][0] == "failed" for k in a if k[0] == m), m


def test_modules_memory_and_block_masks_cross_isolated(pytester):
    """What needs more than values and handles gets the in-process verdicts: modules the candidate builds
    inside the suite's modules and optimizers (gpt), a torch module it returns (qlora merge()), memory its
    process holds and a call log its copies of the suite's blocks write (checkpoint), gradients through
    the suite's pieces it calls, and a FlexAttention BlockMask whose mask_mod is its code (attention_fast)."""
    suites = ["checkpoint", "finetune", "gpt", "attention_fast"]
    pick = ("-k", "test_checkpoint.py or qlora_merge or every_parameter or lora_finetune or broken_piece "
                  "or block_mask or adamw or clip_grad")
    _, plain = run_suite(pytester, suites, *pick, results="plain.json")
    _, isolated = run_suite(pytester, suites, "--fmspec-isolate", *pick, results="iso.json")
    assert outcomes(plain) == outcomes(isolated)
    assert len(outcomes(isolated)) > 40 and set(outcomes(isolated).values()) <= {"passed", "skipped"}


def test_suite_modules_cross_when_the_suites_are_run_from_elsewhere(pytester):
    """Run as `fmspec grade` runs them (--pyargs, from another folder), the checkout's test modules are named
    `suites.test_checkpoint`, which the candidate process cannot import by that name: their blocks still
    cross (found as fmspec.suites.test_checkpoint there)."""
    sub = pytester.path / "subs" / "alice"
    shutil.copytree(ROOT / "candidates" / "reference", sub / "mine")
    res = pytester.runpytest_subprocess("--pyargs", "fmspec.suites.test_checkpoint", "--fmspec-isolate",
                                        "--candidate", f"alice={sub / 'mine'}",
                                        "-k", "no_checkpointing or without_input_grad",
                                        "--fmspec-results", "r.json", "-p", "no:cacheprovider", timeout=600)
    doc = schema.load(pytester.path / "r.json")
    assert len(doc["tests"]) >= 4 and {t["outcome"] for t in doc["tests"]} == {"passed"}, res.stdout.str()[-3000:]


def cheater(name: str) -> str:
    return f"{name}={CHEATERS / (name + '.py')}"


SUITE_CHEATS = ["code_swap", "code_swap_thread", "helper_replaced", "frame_reader", "results_writer"]


def test_cheats_on_the_suite_fail_in_isolated_mode(pytester):
    """Patching the assertions (at the first call, or from a thread), replacing helper modules, reading
    the test's frames and writing the results file or a suite file reach only the candidate's own process:
    its wrong answers fail; the results file and the suite stay as the run wrote and found them."""
    suite_copy = pytester.path / "test_copy.py"
    shutil.copy(SUITES / "test_posenc.py", suite_copy)
    before = suite_copy.read_text()
    targets = os.pathsep.join([str(pytester.path / "r.json"), str(suite_copy)])
    res, doc = run_suite(pytester, ["posenc"], "--fmspec-isolate", "-k", "position_zero or matches_closed_form",
                         *[a for name in SUITE_CHEATS for a in ("--candidate", cheater(name))],
                         env={"FMSPEC_CHEAT_TARGETS": targets})
    assert doc["status"] == "complete" and "tampered" not in doc
    assert suite_copy.read_text() == before
    tests = by_candidate(doc)
    assert set(tests) == set(SUITE_CHEATS)
    for name, recs in tests.items():
        assert {t["outcome"] for t in recs} == {"failed"}, (name, [(t["nodeid"], t["outcome"]) for t in recs])
        assert all("pe" in (t["message"] or "") for t in recs), (name, recs[0]["message"])


def test_reference_reached_by_another_name_is_flagged(pytester):
    res, doc = run_suite(pytester, ["posenc"], "--fmspec-isolate", "-k", "position_zero",
                         "--candidate", cheater("reference_import"), "--candidate", cheater("reference_exec"))
    flags = {c["name"]: c["flags"] for c in doc["candidates"]}
    assert any("reference" in f for f in flags["reference_import"]), flags
    assert any("posenc.py:sinusoidal" in f for f in flags["reference_exec"]), flags
    for name, recs in by_candidate(doc).items():
        assert all(any("reference's code" in f for f in t["flags"]) for t in recs), (name, recs[0]["flags"])


def test_forbidden_function_captured_at_import_or_called_through_aten_fails(pytester):
    res, doc = run_suite(pytester, ["attention"], "--fmspec-isolate", "-k", "matches_oracle or worked",
                         "--candidate", cheater("sdpa_capture"),
                         "--fmspec-forbid", "attention=torch.nn.functional.scaled_dot_product_attention")
    recs = [t for t in doc["tests"] if t["outcome"] != "missing"]
    assert recs
    for t in recs:
        assert t["outcome"] == "failed"
        assert "candidate called torch.nn.functional.scaled_dot_product_attention" in t["message"], t["message"]


@pytest.mark.parametrize("name, reason", [
    ("crash_exit", "candidate process died (exit status 3) in posenc.sinusoidal"),
    ("kill9", "candidate process died (signal 9) in posenc.sinusoidal"),
    ("hang", "candidate process hung for"),
])
def test_crash_hang_and_kill_fail_each_test_and_the_run_ends(pytester, name, reason):
    """Each test fails with the reason (a hypothesis test too, however hypothesis retries), a fresh
    process serves the next test, and the run ends promptly."""
    started = time.monotonic()
    res, doc = run_suite(pytester, ["posenc"], "--fmspec-isolate", "--timeout", "4", "-k",
                         "position_zero_is_sin0_cos0 and d2 or matches_closed_form or same_answer",
                         "--candidate", cheater(name), "--candidate", "reference")
    elapsed = time.monotonic() - started
    recs = by_candidate(doc)
    assert doc["status"] == "complete"
    assert len(recs[name]) == 3 and {t["outcome"] for t in recs[name]} == {"failed"}
    for t in recs[name]:
        assert reason in t["message"], t["message"]
        assert t["duration"] < 8, (t["nodeid"], t["duration"])
    assert {t["outcome"] for t in recs["reference"]} == {"passed"}
    assert elapsed < 120


def _sandbox_refused() -> str | None:
    """Why the sandbox cannot be set up on this machine (no user namespaces), or None."""
    import multiprocessing as mp

    from fmspec import isolate

    ctx = mp.get_context("fork")
    child = ctx.Process(target=lambda: os._exit(3 if isolate.sandbox(str(Path.cwd())) else 0))
    child.start()
    child.join(30)
    return None if child.exitcode == 0 else "no sandbox here: unprivileged user namespaces are refused"


def test_candidate_process_cannot_read_the_results_key(pytester):
    """The key cannot reach the candidate process: not its variable, not the file FMSPEC_KEY_FILE names (a
    folder that also holds the run's files: /dev/null over the file), not the default key file (an empty
    tmpfs over its folder), not the pytest process's memory. In process the same cheater finds all three
    files' keys and the variable, so the check can fail."""
    reason = _sandbox_refused()
    if reason:
        pytest.skip(reason)
    key_file, default = pytester.path / "results-key", pytester.path / "config" / "fmspec" / "results-key"
    default.parent.mkdir(parents=True)
    key_file.write_text("the run's key\n")
    default.write_text("the default key\n")
    env = {"FMSPEC_RESULTS_KEY": "the variable's key", "FMSPEC_KEY_FILE": str(key_file),
           "XDG_CONFIG_HOME": str(pytester.path / "config"),
           "FMSPEC_CHEAT_KEYS": os.pathsep.join([str(key_file), str(default)]),
           "FMSPEC_CHEAT_TARGETS": str(pytester.path / "iso.json")}
    args = ("-k", "position_zero_is_sin0_cos0 and d2", "--candidate", cheater("key_reader"))
    _, isolated = run_suite(pytester, ["posenc"], "--fmspec-isolate", *args, results="iso.json", env=env)
    assert isolated["status"] == "complete" and "integrity" not in isolated or isolated["tests"]
    assert isolated["tests"]
    for t in isolated["tests"]:
        assert t["outcome"] == "failed" and "key search: nothing" in t["message"], t["message"]
    _, plain = run_suite(pytester, ["posenc"], *args, results="plain.json", env=env)
    for t in plain["tests"]:
        assert "key search: the environment, FMSPEC_KEY_FILE" in t["message"], t["message"]


def test_benchmarks_time_rounds_in_the_candidate_process_and_catch_skipped_work(pytester, monkeypatch):
    """Isolated benchmarks: each timed round runs in the candidate process (its output left there), timed
    from the pytest process and spot-checked against a first run through the proxies. The reference's
    numbers come back as in process (the same memory probe, a recorded round trip); a candidate that
    returns zeros when it sees a benchmark's round fails the benchmark with the reason."""
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)  # pytest-benchmark disables itself on an xdist worker
    common = [str(SUITES / "bench_attention.py"), "--fmspec-bench", "-k", "dense and T256", "-p", "no:cacheprovider",
              "--rootdir", str(ROOT), "--candidate", "reference"]
    plain = pytester.runpytest_subprocess(*common, "--fmspec-results", "plain.json", timeout=600)
    assert plain.ret == 0, plain.stdout.str()[-2000:]
    pytester.runpytest_subprocess(*common, "--candidate", cheater("timed_skip"), "--fmspec-isolate",
                                  "--fmspec-results", "iso.json", timeout=600)
    iso = schema.load(pytester.path / "iso.json")
    tests = {t["candidate"]: t for t in iso["tests"]}
    assert tests["reference"]["outcome"] == "passed", tests["reference"]["message"]
    assert tests["timed_skip"]["outcome"] == "failed"
    assert "timed round 1, run in the candidate process" in tests["timed_skip"]["message"], tests["timed_skip"]["message"]
    (record,) = [b for b in iso["benchmarks"] if "reference" in b["name"]]
    (same,) = schema.load(pytester.path / "plain.json")["benchmarks"]
    assert record["extra_info"]["largest_elements"] == same["extra_info"]["largest_elements"] > 0
    assert record["extra_info"]["isolated"]["spot_checks"] >= 2
    assert 0 < record["extra_info"]["isolated"]["round_trip_ms"] < record["stats"]["median"] * 1e3


def test_environment_a_test_sets_reaches_the_candidate_process(pytester):
    """A test that sets TRITON_INTERPRET runs the candidate's Triton kernels in the interpreter there too:
    a kernel that rounds ties up (the eager code rounds them to even) fails the same tests in both modes."""
    mutant = str(ROOT / "candidates" / "mutants" / "quant_triton_round_half_up.py")
    args = ["--candidate", mutant, "-k", "under_triton_interpreter"]
    _, plain = run_suite(pytester, ["quant"], *args, results="plain.json")
    _, isolated = run_suite(pytester, ["quant"], *args, "--fmspec-isolate", results="iso.json")
    assert outcomes(plain) == outcomes(isolated)
    assert "failed" in set(outcomes(isolated).values())


def test_torch_native_autodiff_gets_the_same_verdicts_isolated_and_in_process(pytester):
    """torch_native's jvp is ``torch.autograd.functional.jvp``, the double-vjp trick: in the candidate
    process it takes a vjp of the suite's program (run in the pytest process, reached through the reverse
    bridge) with ``create_graph=True``, then the gradient of that vjp in the cotangent. Both backwards cross
    the bridge twice over (the program's ``ops`` calls go back to the candidate process): the first must
    give gradients that are differentiable in the cotangent and in the inputs, and the second must not free
    what the first's graph shares with the call's (the gradient of ``exp`` holds ``exp``'s output). Before,
    every jvp came back 0 (test_lecture_example_jvp's ``got 0, expected -12.98``). It also covers a leaf
    sent twice to one call (the program's ``ops.add(x, x)``: one tensor in the candidate process, whose
    gradient the bridge counted once per argument, twice in all: test_gradient_matches_autograd)."""
    args = ["--candidate", "torch_native", "--hypothesis-profile", "ci"]
    _, plain = run_suite(pytester, ["autodiff"], *args, results="plain.json")
    _, isolated = run_suite(pytester, ["autodiff"], *args, "--fmspec-isolate", results="iso.json")
    a, b = outcomes(plain), outcomes(isolated)
    assert a == b, {k: (a[k], b.get(k)) for k in a if a[k] != b.get(k)}
    assert set(b.values()) == {"passed"}
    covers = ["test_lecture_example_jvp", "test_jvp_matches_autograd", "test_jvp_vjp_adjoint",
              "test_gradient_matches_autograd", "test_vjp_matches_autograd"]
    assert all(any(k.startswith(name + "[") for k in b) for name in covers)
