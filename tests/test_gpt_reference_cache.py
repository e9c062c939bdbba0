"""The gpt suite's cache of the reference's debug runs (suites/_gpt_helpers.py): computed on first need and
written to one file per fingerprint in FMSPEC_CACHE_DIR, read back by a later process bit for bit; a file
that is corrupt or of another fingerprint is a miss, and a folder that cannot be written is no error.

One test trains the reference's real debug run (2 s); the others put a stand-in in place of
``gh.reference_run`` that counts its calls. "A later process" is this one with the in-process memos emptied.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from fmspec.reference import gpt
from fmspec.suites import _gpt_helpers as gh

TRAIN = gh.DEBUG.train
DATA = SimpleNamespace(vocab_size=300, key=lambda: (300, 9000, 1000, 12345, 678))  # what fingerprint() reads


class StandIn:
    """``gh.reference_run``'s stand-in: losses 1/3, 1/4, ... (not exact in decimal), counting its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, cfg, tcfg, data):
        self.calls += 1
        return SimpleNamespace(losses=[1 / (i + 3) for i in range(tcfg.steps)], seconds=0.25,
                               model=SimpleNamespace(n_params=lambda: 1234))


@pytest.fixture
def cache(monkeypatch, tmp_path):
    """An empty cache folder (FMSPEC_CACHE_DIR) and empty in-process memos."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("FMSPEC_CACHE_DIR", str(folder))
    forget(monkeypatch)
    return folder


@pytest.fixture
def stand_in(monkeypatch):
    fake = StandIn()
    monkeypatch.setattr(gh, "reference_run", fake)
    return fake


def forget(monkeypatch):
    """What a new process starts with: no curve, no run and no fingerprint memoized."""
    monkeypatch.setattr(gh, "_CURVES", {})
    monkeypatch.setattr(gh, "_RUNS", {})
    monkeypatch.setattr(gh, "_MACHINE", {})


def files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_the_reference_run_is_computed_once_then_read_bit_for_bit(cache, monkeypatch):
    """The real debug run, on one thread as the suite runs it: the first call trains and writes one file
    (no temp file left), the next process reads it and trains nothing: the same losses, seconds, params."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = gh.debug_data(gpt.Parts.reference())
        trained, train = [], gpt.train
        monkeypatch.setattr(gpt, "train", lambda *a, **k: trained.append(a[0]) or train(*a, **k))
        first = gh.reference_curve(gh.DEBUG.model, TRAIN, data)
        assert not first.cached and len(trained) == 1
        fp = gh.fingerprint(replace(gh.DEBUG.model, vocab_size=data.vocab_size), TRAIN, data)
        assert files(cache) == [f"gpt-reference-{fp}.json"]
        forget(monkeypatch)
        monkeypatch.setattr(gpt, "train", lambda *a, **k: pytest.fail("the cached run was trained again"))
        second = gh.reference_curve(gh.DEBUG.model, TRAIN, data)
    finally:
        torch.set_num_threads(threads)
    assert second.cached
    assert (second.losses, second.seconds, second.params) == (first.losses, first.seconds, first.params)
    assert len(first.losses) == TRAIN.steps and all(math.isfinite(x) for x in first.losses)


def test_a_second_call_in_one_process_reads_neither_file_nor_run(cache, stand_in):
    a = gh.reference_curve(gh.DEBUG.model, TRAIN, DATA)
    (cache / files(cache)[0]).unlink()
    b = gh.reference_curve(gh.DEBUG.model, TRAIN, DATA)
    assert b is a and stand_in.calls == 1 and files(cache) == []


CORRUPT = {
    "truncated": lambda doc: json.dumps(doc)[:100],
    "empty": lambda doc: "",
    "not-utf8": lambda doc: b"\xff\xfe{",
    "not-a-dict": lambda doc: json.dumps(doc["losses"]),
    "no-losses": lambda doc: json.dumps({k: v for k, v in doc.items() if k != "losses"}),
    "other-fingerprint": lambda doc: json.dumps({**doc, "fingerprint": "0" * 64}),
    "a-step-short": lambda doc: json.dumps({**doc, "losses": doc["losses"][:-1]}),
    "nan-loss": lambda doc: json.dumps({**doc, "losses": [math.nan, *doc["losses"][1:]]}),
    "string-loss": lambda doc: json.dumps({**doc, "losses": ["0.5", *doc["losses"][1:]]}),
    "params-not-int": lambda doc: json.dumps({**doc, "params": "1234"}),
}


@pytest.mark.parametrize("corruption", CORRUPT.values(), ids=CORRUPT.keys())
def test_a_corrupt_cache_file_is_ignored_and_rewritten(cache, stand_in, monkeypatch, corruption):
    first = gh.reference_curve(gh.DEBUG.model, TRAIN, DATA)
    (path,) = cache.iterdir()
    good = path.read_text()
    bad = corruption(json.loads(good))
    path.write_bytes(bad) if isinstance(bad, bytes) else path.write_text(bad)
    forget(monkeypatch)
    again = gh.reference_curve(gh.DEBUG.model, TRAIN, DATA)
    assert stand_in.calls == 2 and not again.cached, "a corrupt cache file was used"
    assert again.losses == first.losses
    assert files(cache) == [path.name] and json.loads(path.read_text()) == json.loads(good), "not rewritten"


def test_an_edited_reference_misses_the_cache(cache, stand_in, monkeypatch):
    """Another digest of the reference's sources (an edit) is another fingerprint: computed, a second file."""
    gh.reference_curve(gh.DEBUG.model, TRAIN, DATA)
    forget(monkeypatch)
    monkeypatch.setattr(gh, "sources_digest", lambda root: "the reference, edited")
    again = gh.reference_curve(gh.DEBUG.model, TRAIN, DATA)
    assert stand_in.calls == 2 and not again.cached and len(files(cache)) == 2


def test_sources_digest_changes_with_any_edit(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("gpt.py", "sub/bpe.py"):
        (tmp_path / name).write_text("x = 1\n")
    (tmp_path / "notes.txt").write_text("not code")
    before = gh.sources_digest(tmp_path)
    (tmp_path / "notes.txt").write_text("not code either")
    assert gh.sources_digest(tmp_path) == before
    (tmp_path / "sub" / "bpe.py").write_text("x = 2\n")
    edited = gh.sources_digest(tmp_path)
    assert edited != before
    (tmp_path / "sub" / "bpe.py").rename(tmp_path / "sub" / "bpe2.py")
    assert gh.sources_digest(tmp_path) not in (before, edited)


OTHER = {
    "objective": lambda: (replace(gh.DEBUG.model, objective="mlm"), TRAIN, DATA),
    "steps": lambda: (gh.DEBUG.model, replace(TRAIN, steps=99), DATA),
    "ids": lambda: (gh.DEBUG.model, TRAIN, SimpleNamespace(vocab_size=300, key=lambda: (300, 9000, 1000, 1, 678))),
}


@pytest.mark.parametrize("other", OTHER.values(), ids=OTHER.keys())
def test_the_fingerprint_depends_on_configs_and_ids(other):
    assert gh.fingerprint(*other()) != gh.fingerprint(gh.DEBUG.model, TRAIN, DATA)


def test_the_fingerprint_depends_on_the_thread_count():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = gh.fingerprint(gh.DEBUG.model, TRAIN, DATA)
        torch.set_num_threads(2)
        two = gh.fingerprint(gh.DEBUG.model, TRAIN, DATA)
    finally:
        torch.set_num_threads(threads)
    assert one != two


def test_a_cache_folder_that_cannot_be_written_is_no_error(monkeypatch, tmp_path, stand_in):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("FMSPEC_CACHE_DIR", str(blocker / "cache"))  # under a file: no folder can be made
    forget(monkeypatch)
    curve = gh.reference_curve(gh.DEBUG.model, TRAIN, DATA)
    assert not curve.cached and len(curve.losses) == TRAIN.steps and list(tmp_path.iterdir()) == [blocker]


def test_without_store_nothing_is_written(cache, stand_in):
    curve = gh.reference_curve(gh.DEBUG.model, TRAIN, DATA, store=False)
    assert not curve.cached and stand_in.calls == 1 and not cache.exists()


@pytest.mark.parametrize("source, stores", [("module fmspec.candidates.torch_native", True),
                                            ("entry point reference = fmspec.candidates.reference", True),
                                            ("path /somewhere/mine.py", False)], ids=["torch_native", "reference",
                                                                                     "a-submission"])
def test_only_fmspecs_own_candidates_store_in_process(source, stores):
    assert gh.may_store(SimpleNamespace(source=source, obj=object())) is stores


def test_the_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FMSPEC_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert gh.cache_dir() == tmp_path / "home" / ".cache" / "fmspec"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert gh.cache_dir() == tmp_path / "home" / ".cache" / "fmspec"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert gh.cache_dir() == tmp_path / "xdg" / "fmspec"
    monkeypatch.setenv("FMSPEC_CACHE_DIR", str(tmp_path / "mine"))
    assert gh.cache_dir() == tmp_path / "mine"
