"""quant on the GPU: the tables of a bench results file, and the NF4 dequantize kernel variants timed side by side.

    python benchmarks/quant_gpu.py OUT/quant-bench-gpu.json > benchmarks/quant_gpu.md
    python benchmarks/quant_gpu.py --nf4-variants OUT_DIR          # one CUDA GPU, about a minute
    python benchmarks/quant_gpu.py --nf4-variants OUT_DIR --dry    # CPU, Triton's interpreter, tiny sizes

The first form renders the fmspec results JSON of a ``--fmspec-bench`` run of ``suites/bench_quant.py``:
bandwidth per operation and size, and the LLM.int8 matmul.

``--nf4-variants`` times every variant of ``reference/quant_triton.py``'s NF4 dequantize kernel (each level
lookup of ``quant_triton.NF4_LOOKUPS`` at each tile size and warp count of :data:`CONFIGS`) at 16M, 64M and
256M elements, in one process beside the measured copy bandwidth (``gb.ceilings``: a 1 GiB device-to-device
copy, read + write). Inputs: random packed codes (every code equally likely), bf16 block constants, blocks of
64, bf16 output; effective GB/s by ``suites/bench_quant.py``'s cost model, n/2 code bytes + (n/64)·2 absmax
bytes read and 2n bytes written. Each variant's output is compared bit for bit with the readable reference
(``reference/quant.py`` with its Triton dispatch off) on the same input. Two more rows for scale: the
blockwise absmax int8 dequantize kernel at the same n, and ``quant.nf4_dequantize`` (the dispatch users call,
which also builds the level table each call). Writes OUT_DIR/nf4-variants.json and OUT_DIR/nf4-variants.md.

``--dry`` runs every code path once on CPU (the kernels in Triton's interpreter, two small sizes with a
partial last block, untimed: ``gb.dry_time``), so that the GPU run cannot die on a typo; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

BLOCK = 64  # QLoRA's block size, as suites/bench_quant.py
SIZES = [2**24, 2**26, 2**28]
DRY_SIZES = [5 * BLOCK + 6, 2**12 + 2]  # a partial last block; whole tiles plus one partial block
CONFIGS = [(8192, 8), (16384, 8), (8192, 4), (32768, 16)]  # (elements a program, num_warps); the first is TILE, NUM_WARPS
TARGET = 0.8  # of the copy bandwidth, from 64M elements


# ------------------------------------------------------------------------------ the results file's tables
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


# ------------------------------------------------------------------------------------- NF4 kernel variants
def _variants() -> list[dict]:
    from fmspec.reference import quant_triton as qt

    return [{"variant": f"{lookup} tile{tile} w{warps}", "lookup": lookup, "tile": tile, "num_warps": warps}
            for lookup in qt.NF4_LOOKUPS for tile, warps in CONFIGS]


def _nf4_inputs(n: int, device: str, seed: int):
    """An NF4State of n bf16 elements: random packed codes, block constants in [0.5, 1.5) (bf16)."""
    from fmspec.reference import quant as refq

    n_blocks = -(-n // BLOCK)
    gen = torch.Generator(device).manual_seed(seed)
    packed = torch.randint(0, 256, (-(-n_blocks * BLOCK // 2),), generator=gen, device=device, dtype=torch.uint8)
    absmax = (torch.rand(n_blocks, generator=gen, device=device) + 0.5).to(torch.bfloat16)
    return refq.NF4State(packed, absmax, None, None, None, torch.Size([n]), torch.bfloat16, BLOCK)


def nf4_variants(out_dir: Path, dry: bool) -> dict:
    from fmspec import gpu_bench as gb
    from fmspec.reference import quant as refq
    from fmspec.reference import quant_triton as qt
    from fmspec.suites import bench_quant as bq

    device = "cpu" if dry else "cuda"
    timer = gb.dry_time if dry else gb.time_ms
    sync = (lambda: None) if dry else torch.cuda.synchronize
    ceiling = gb.DRY_CEILING if dry else gb.ceilings(device, torch.bfloat16)
    levels = torch.tensor(refq.NF4_LEVELS, dtype=torch.float32, device=device)
    rows, started = [], time.time()

    def point(name: str, n: int, fn, expected: torch.Tensor | None, op: str = "nf4_dequantize", **extra) -> None:
        row = {"variant": name, "n": n, **extra}
        try:
            got = fn()  # compiles; compilation stays out of the timing
            sync()
            row["bit_exact"] = None if expected is None else bool(torch.equal(got.reshape(-1), expected))
            del got
            timing = timer(fn)
            row.update(gb.summary(timing, bq.cost(op, n), ceiling))
        except Exception as exc:  # recorded; the next point goes on
            row["error"] = repr(exc)[:400]
        rows.append(row)
        print(json.dumps({k: row.get(k) for k in ("variant", "n", "median_ms", "gbps", "fraction_of_copy_ceiling",
                                                  "bit_exact", "error") if k in row}), flush=True)

    def write() -> dict:
        env = {"device": "cpu (dry run: Triton's interpreter, untimed)" if dry else torch.cuda.get_device_name(),
               "torch": torch.__version__, "triton": _triton_version(), "python": platform.python_version(),
               "copy_gbps": ceiling["copy_gbps"], "dry": dry, "seconds": round(time.time() - started, 1)}
        doc = {"environment": env, "block_size": BLOCK, "dtype": "bfloat16", "target_fraction_of_copy": TARGET,
               "cost_model": bq.cost("nf4_dequantize", BLOCK).model, "configs": CONFIGS, "rows": rows}
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "nf4-variants.json").write_text(json.dumps(doc, indent=1))
        (out_dir / "nf4-variants.md").write_text(nf4_table(doc))
        return doc

    for n in (DRY_SIZES if dry else SIZES):
        state = _nf4_inputs(n, device, seed=n)
        with bq._readable() as readable:  # the oracle: reference/quant.py's own code
            expected = readable.nf4_dequantize(state).reshape(-1)
        sync()
        for v in _variants():
            point(v["variant"], n, lambda v=v: qt.nf4_dequantize(
                state.packed, state.absmax, levels, n, BLOCK, torch.bfloat16, interpret=dry,
                lookup=v["lookup"], tile=v["tile"], num_warps=v["num_warps"]), expected,
                  lookup=v["lookup"], tile=v["tile"], num_warps=v["num_warps"])
        point("quant.nf4_dequantize (dispatch)", n, lambda: refq.nf4_dequantize(state), expected,
              lookup=qt.NF4_LOOKUP)
        del expected
        # for scale: the absmax int8 dequantize kernel at the same n (n codes read, not n/2; its own bytes)
        q = torch.randint(-127, 128, (n,), device=device, dtype=torch.int8)
        scale = state.absmax[: -(-n // BLOCK)]
        point("absmax int8 dequantize kernel", n, lambda: qt.absmax_dequantize(q, scale, BLOCK, interpret=dry), None,
              op="absmax_block_dequantize")
        del state, q, scale
        if not dry:
            torch.cuda.empty_cache()
        doc = write()  # after every size: a run cut short keeps what it measured
    return doc


def _triton_version() -> str:
    import triton

    return triton.__version__


def nf4_table(doc: dict) -> str:
    """Markdown: one row per variant, GB/s and fraction of copy per size; the best bit-exact variant last."""
    env, rows = doc["environment"], doc["rows"]
    sizes = sorted({r["n"] for r in rows})
    names = list(dict.fromkeys(r["variant"] for r in rows))
    at = {(r["variant"], r["n"]): r for r in rows}

    def label(n: int) -> str:
        return f"{n >> 20}M" if n >= 2**20 else str(n)

    def cell(r: dict | None) -> str:
        if r is None:
            return "n/a"
        if "error" in r:
            return "error"
        return f"{r['gbps']:.0f} ({r['fraction_of_copy_ceiling']:.0%})"

    lines = [f"Device: {env['device']}; torch {env['torch']}, triton {env['triton']}. NF4 dequantize, bf16 out, "
             f"blocks of {doc['block_size']}; effective GB/s ({doc['cost_model']}) / device-timed median, and the "
             f"fraction of the copy bandwidth measured in the same run ({env['copy_gbps']:.0f} GB/s). "
             f"Bit-exact: equal to the readable reference on the same input. Variant = level lookup, elements a "
             f"program, warps. The absmax row moves its own bytes (n codes + scales in, 2n out).", "",
             "| variant | " + " | ".join(f"{label(n)} GB/s (of copy)" for n in sizes) + " | bit-exact |",
             "| --- | " + " | ".join("---:" for _ in sizes) + " | --- |"]
    for name in names:
        exact = {at[(name, n)].get("bit_exact") for n in sizes if (name, n) in at}
        lines.append(f"| {name} | " + " | ".join(cell(at.get((name, n))) for n in sizes)
                     + f" | {'/'.join(str(e) for e in sorted(exact, key=str))} |")
    big = [n for n in sizes if n >= 2**26] or sizes
    scored = []
    for name in names:
        pts = [at.get((name, n)) for n in big]
        if name.startswith(("quant.", "absmax")) or any(p is None or "error" in p or p.get("bit_exact") is not True
                                                         for p in pts):
            continue
        scored.append((min(p["fraction_of_copy_ceiling"] for p in pts), name))
    if scored:
        frac, name = max(scored)
        lines += ["", f"Best bit-exact variant from {label(big[0])} elements: **{name}**, at least {frac:.0%} of copy "
                  f"(target {doc['target_fraction_of_copy']:.0%})."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("path", help="a bench results JSON (tables to stdout), or OUT_DIR with --nf4-variants")
    ap.add_argument("--nf4-variants", action="store_true", help="time the NF4 dequantize kernel variants")
    ap.add_argument("--dry", action="store_true", help="with --nf4-variants: every code path once on CPU")
    args = ap.parse_args(argv)
    if args.nf4_variants:
        doc = nf4_variants(Path(args.path), args.dry)
        sys.stdout.write(nf4_table(doc))
        return 0 if all("error" not in r and r.get("bit_exact") is not False for r in doc["rows"]) else 1
    with open(args.path, encoding="utf-8") as f:
        sys.stdout.write(table(json.load(f)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
