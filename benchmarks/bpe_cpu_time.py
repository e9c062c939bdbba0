"""CPU time of the reference's ``bpe.train`` (its fast trainer) against HF ``tokenizers`` on one thread, interleaved.

    python benchmarks/bpe_cpu_time.py [--vocab 500 2000] [--runs 15]

``time.process_time`` counts the CPU time of every thread of this process, so a trainer that waits (or
that other processes on the machine slow down) is charged less than by a wall clock. Reference, HF
(``TOKENIZERS_PARALLELISM=false``) and the reference's pre-tokenization alone run in turn, ``--runs``
times; the table gives the minimum and median of each and the reference/HF ratio of both.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ["TOKENIZERS_PARALLELISM"] = "false"  # read by tokenizers at each call

from fmspec.reference.bpe.pretokenize import pretoken_counts  # noqa: E402
from fmspec.reference.bpe.training_fast import train  # noqa: E402
from fmspec.suites import _bpe_helpers as bh  # noqa: E402
from fmspec.suites.bench_bpe import CORPUS, hf_train  # noqa: E402


def cpu_seconds(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    text = bh.read(CORPUS)
    print("| vocab | reference min / median | HF 1 thread min / median | pre-tokenizing | ratio min / median |")
    print("| --- | --- | --- | --- | --- |")
    for vocab_size in args.vocab:
        runs = {"ref": [], "hf": [], "pre": []}
        for _ in range(args.runs):  # interleaved, so that a slow spell hits all three
            runs["ref"].append(cpu_seconds(lambda: train(text, vocab_size)))
            runs["hf"].append(cpu_seconds(lambda: hf_train(text, vocab_size)))
            runs["pre"].append(cpu_seconds(lambda: pretoken_counts([text], ())))
        lo = {k: min(v) for k, v in runs.items()}
        med = {k: statistics.median(v) for k, v in runs.items()}
        print(f"| {vocab_size} | {lo['ref']:.4f} / {med['ref']:.4f} s | {lo['hf']:.4f} / {med['hf']:.4f} s "
              f"| {lo['pre']:.4f} / {med['pre']:.4f} s | {lo['ref'] / lo['hf']:.2f} / {med['ref'] / med['hf']:.2f} |")


if __name__ == "__main__":
    main()
