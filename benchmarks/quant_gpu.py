"""Markdown tables of a quant benchmark results file (the fmspec results JSON of a ``--fmspec-bench`` run of
``suites/bench_quant.py``): bandwidth per operation and size, and the LLM.int8 matmul.

    python benchmarks/quant_gpu.py OUT/quant-bench-gpu.json > benchmarks/quant_gpu.md
"""

from __future__ import annotations

import json
import sys


def _bench_rows(doc: dict, key: str) -> list[dict]:
    out = []
    for b in doc.get("benchmarks", []):
        info = b.get("extra_info") or {}
        if key in info and b.get("component") == "quant":
            out.append({**info, "candidate": b.get("candidate")})
    return out


def _num(v, fmt: str) -> str:
    return "n/a" if v is None else format(v, fmt)


def table(doc: dict) -> str:
    env = doc.get("environment", {})
    rows = sorted(_bench_rows(doc, "op"), key=lambda r: (r["candidate"], r["op"], r["n"]))
    copy = rows[0]["ceiling_copy_gbps"] if rows else None
    lines = [f"Device: {env.get('device')}; torch {env.get('torch')}, triton {env.get('triton')}; bf16 inputs, "
             f"blocks of 64, rows of 4096. Effective GB/s = (bytes read + written) / device-timed median, by the "
             f"cost model of suites/bench_quant.py; copy ceiling measured in the same run: {_num(copy, '.0f')} GB/s.",
             "", "| candidate | op | n | GB/s | of copy | p20–p80 ms | readable GB/s | Triton GB/s | Triton of copy "
             "| Triton bit-exact |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        lines.append(f"| {r['candidate']} | {r['op']} | {r['n'] >> 20}M | {r['gbps']:.0f} | "
                     f"{r['fraction_of_copy_ceiling']:.0%} | {r['p20_ms']:.3f}–{r['p80_ms']:.3f} | "
                     f"{_num(r.get('readable_gbps'), '.0f')} | {_num(r.get('triton_gbps'), '.0f')} | "
                     f"{_num(r.get('triton_fraction_of_copy_ceiling'), '.0%')} | {r.get('triton_bit_exact')} |")
    mm = sorted(_bench_rows(doc, "M"), key=lambda r: (r["candidate"], r["M"], r["K"], r["N"]))
    if mm:
        lines += ["", "LLM.int8 (`quant.int8_matmul`, 0.5% outlier columns) against `torch._int_mm` on codes made "
                  "beforehand and a bf16 matmul; TFLOP/s = 2·M·N·K / median.", "",
                  "| candidate | M×K×N | ms | TFLOP/s | _int_mm ms | bf16 ms | vs bf16 |",
                  "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        for r in mm:
            lines.append(f"| {r['candidate']} | {r['M']}×{r['K']}×{r['N']} | {r['median_ms']:.3f} | {r['tflops']:.0f} | "
                         f"{_num(r.get('int_mm_ms'), '.3f')} | {_num(r.get('bf16_matmul_ms'), '.3f')} | "
                         f"{_num(r.get('speedup_vs_bf16_matmul'), '.2f')}× |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        sys.stdout.write(table(json.load(f)))
