"""Markdown table of a flash benchmark results file (the fmspec results JSON of a ``--fmspec-bench`` run).

    python benchmarks/table.py benchmarks/results/flash-h200-bench.json > benchmarks/results/flash-h200-bench.md
"""

from __future__ import annotations

import json
import sys


def rows(doc: dict) -> list[dict]:
    out = []
    for b in doc.get("benchmarks", []):
        info = b.get("extra_info") or {}
        if "tflops" in info and str(b.get("nodeid", "")).find("bench_flash") >= 0:
            out.append({**info, "candidate": b.get("candidate")})
    return sorted(out, key=lambda r: (r["candidate"], r["mode"], r["D"], r["causal"], r["T"]))


def tflops(r: dict, name: str) -> str:
    ms = r.get(f"{name}_ms")
    return f"{r['flops'] / ms / 1e9:.0f}" if ms else "n/a"


def table(doc: dict) -> str:
    env = doc.get("environment", {})
    lines = [f"Device: {env.get('device')}; torch {env.get('torch')}, triton {env.get('triton')}; bf16, "
             "B·T = 16384 tokens, H = 2048/D. TFLOP/s by the cost model of suites/bench_flash.py "
             "(fwd 4·B·H·T²·D, causal half; fwd+bwd 3.5 × fwd); device-timed medians.", "",
             "| candidate | mode | D | causal | T | ms | TFLOP/s | SDPA flash | SDPA cuDNN | SDPA efficient "
             "| x flash | x cuDNN | of matmul ceiling |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows(doc):
        fx = r.get("speedup_vs_sdpa_flash")
        cx = r.get("speedup_vs_sdpa_cudnn")
        lines.append(
            f"| {r['candidate']} | {r['mode']} | {r['D']} | {r['causal']} | {r['T']} | {r['median_ms']:.3f} | "
            f"{r['tflops']:.0f} | {tflops(r, 'sdpa_flash')} | {tflops(r, 'sdpa_cudnn')} | {tflops(r, 'sdpa_efficient')} | "
            f"{fx:.2f} | {cx:.2f} | {r['fraction_of_matmul_ceiling']:.2f} |" if fx and cx else
            f"| {r['candidate']} | {r['mode']} | {r['D']} | {r['causal']} | {r['T']} | {r['median_ms']:.3f} | "
            f"{r['tflops']:.0f} | {tflops(r, 'sdpa_flash')} | {tflops(r, 'sdpa_cudnn')} | {tflops(r, 'sdpa_efficient')} "
            f"| {fx} | {cx} | {r['fraction_of_matmul_ceiling']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(table(json.load(open(sys.argv[1]))), end="")
