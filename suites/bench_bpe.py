"""bpe benchmarks (CPU): training and encoding throughput, each candidate beside HF ``tokenizers``.

Cost model: BPE training and encoding are linear in the corpus (pre-tokenization, the initial pair count,
the encoding of each pre-token) plus, for training, work per merge proportional to the words that hold the
merged pair. Throughput is reported as MB of UTF-8 corpus per second (1 MB = 1e6 bytes); the corpus is
``suites/data/corpus.en.txt`` (133 KB of English), shipped with the suite.

- training: ``train(corpus, vocab_size)`` at vocab 500 and 2000 (no special tokens; for the reference,
  ``bpe.train`` is the fast trainer of ``reference/bpe/training_fast.py``, not the readable recount of
  ``training.py``, which learns the same merges); HF's ``BpeTrainer``
  with a byte-level alphabet on the same corpus and vocab size, single-threaded
  (``TOKENIZERS_PARALLELISM=false``) and on all cores. The candidate's record also holds its time divided
  by HF's single-threaded time, measured in the same run (the reference's target: at most 2);
- encoding: ``Tokenizer(gpt2 vocab, merges).encode(corpus)`` with a fresh tokenizer each round (no warm
  pre-token cache); HF's ``encode`` single-threaded and ``encode_batch`` over the lines on all cores.

Host clock (``time.perf_counter`` through pytest-benchmark): the work is synchronous CPU work. A candidate
that failed bpe conformance earlier in the same run is not timed. Run with
``pytest suites/bench_bpe.py --fmspec-bench`` (one process, no xdist).
"""

from __future__ import annotations

import os
import statistics
import time

import pytest

from fmspec.suites import _bpe_helpers as bh
from fmspec import benchutil as bu

pytestmark = [pytest.mark.component("bpe"), pytest.mark.bench]

CORPUS = "corpus.en.txt"
VOCAB_SIZES = [500, 2000]
THREADS = ["1", "all"]
ROUNDS = 5


def corpus() -> str:
    return bh.read(CORPUS)


def megabytes(text: str) -> float:
    return len(text.encode("utf-8")) / 1e6


def hf_parallelism(monkeypatch: pytest.MonkeyPatch, threads: str) -> None:
    """HF ``tokenizers`` reads TOKENIZERS_PARALLELISM at each call: "false" runs single-threaded."""
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false" if threads == "1" else "true")


def hf_train(text: str, vocab_size: int):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator([text], trainer=trainer)
    return tok


def median_seconds(fn, rounds: int = ROUNDS) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# ---------------------------------------------------------------------------------------------- training
def timed_median(benchmark) -> float:
    """The median pytest-benchmark measured; benchmarks disabled (``--benchmark-disable``, xdist) time nothing."""
    if benchmark.stats is None:
        pytest.skip("pytest-benchmark is disabled in this run (--benchmark-disable or xdist): nothing was timed")
    return benchmark.stats.stats.median


@pytest.mark.needs("bpe.train")
@pytest.mark.parametrize("vocab_size", VOCAB_SIZES, ids=lambda v: f"vocab{v}")
def test_train_throughput(candidate, benchmark, fmspec_metrics, request, monkeypatch, vocab_size):
    """MB/s of ``train(corpus.en, vocab_size)``, and the time against HF's single-threaded trainer."""
    conformance = bu.require_conformance(request, "bpe", candidate.name)
    tokenizers = pytest.importorskip("tokenizers")
    del tokenizers
    text = corpus()
    benchmark.group = f"bpe-train-vocab{vocab_size}"
    bu.pedantic(benchmark, candidate, candidate.bpe.train, args=(text, vocab_size), rounds=ROUNDS, iterations=1,
                warmup_rounds=1)
    seconds = timed_median(benchmark)
    hf_parallelism(monkeypatch, "1")
    hf_seconds = median_seconds(lambda: hf_train(text, vocab_size))
    bu.record(benchmark, fmspec_metrics, {
        "corpus_mb": megabytes(text), "vocab_size": vocab_size, "seconds": seconds,
        "mb_per_s": megabytes(text) / seconds, "hf_1thread_seconds": hf_seconds,
        "ratio_to_hf_1thread": seconds / hf_seconds, "conformance": conformance,
    })


@pytest.mark.parametrize("threads", THREADS, ids=lambda t: f"threads-{t}")
@pytest.mark.parametrize("vocab_size", VOCAB_SIZES, ids=lambda v: f"vocab{v}")
def test_hf_train_throughput(benchmark, fmspec_metrics, monkeypatch, vocab_size, threads):
    """MB/s of HF ``BpeTrainer`` (byte-level alphabet, GPT-2 pre-tokenizer) on the same corpus."""
    pytest.importorskip("tokenizers")
    hf_parallelism(monkeypatch, threads)
    text = corpus()
    benchmark.group = f"bpe-train-vocab{vocab_size}"
    benchmark.pedantic(hf_train, args=(text, vocab_size), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    seconds = timed_median(benchmark)
    bu.record(benchmark, fmspec_metrics, {"corpus_mb": megabytes(text), "vocab_size": vocab_size, "seconds": seconds,
                                       "mb_per_s": megabytes(text) / seconds, "threads": threads,
                                       "cpu_count": os.cpu_count()})


# ---------------------------------------------------------------------------------------------- encoding
@pytest.mark.needs("bpe.Tokenizer")
def test_encode_throughput(candidate, benchmark, fmspec_metrics, request):
    """MB/s of ``Tokenizer(gpt2).encode(corpus.en)``, a fresh tokenizer (cold cache) every round."""
    conformance = bu.require_conformance(request, "bpe", candidate.name)
    text = corpus()
    vocab, merges = bh.load_gpt2()
    benchmark.group = "bpe-encode-gpt2"

    def fresh():
        return (candidate.bpe.Tokenizer(vocab, merges, [bh.EOT]), text), {}

    ids = bu.pedantic(benchmark, candidate, lambda tok, t: tok.encode(t), setup=fresh, rounds=ROUNDS, iterations=1)
    seconds = timed_median(benchmark)
    bu.record(benchmark, fmspec_metrics, {"corpus_mb": megabytes(text), "seconds": seconds,
                                       "mb_per_s": megabytes(text) / seconds, "tokens": len(ids),
                                       "conformance": conformance})


@pytest.mark.parametrize("threads", THREADS, ids=lambda t: f"threads-{t}")
def test_hf_encode_throughput(benchmark, fmspec_metrics, monkeypatch, threads):
    """MB/s of HF ``tokenizers`` on the GPT-2 vocabulary: ``encode`` of the whole text on one thread,
    ``encode_batch`` of its lines on all cores."""
    pytest.importorskip("tokenizers")
    hf_parallelism(monkeypatch, threads)
    text = corpus()
    lines = text.splitlines(keepends=True)
    benchmark.group = "bpe-encode-gpt2"

    def fresh():
        return (bh.hf_from_files(str(bh.GPT2_DIR / "vocab.json"), str(bh.GPT2_DIR / "merges.txt"), (bh.EOT,)),), {}

    if threads == "1":
        benchmark.pedantic(lambda tok: tok.encode(text), setup=fresh, rounds=ROUNDS, iterations=1)
    else:
        benchmark.pedantic(lambda tok: tok.encode_batch(lines), setup=fresh, rounds=ROUNDS, iterations=1)
    seconds = timed_median(benchmark)
    bu.record(benchmark, fmspec_metrics, {"corpus_mb": megabytes(text), "seconds": seconds,
                                       "mb_per_s": megabytes(text) / seconds, "threads": threads,
                                       "cpu_count": os.cpu_count()})
