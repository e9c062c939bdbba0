"""The HTML report and the results loader, from recorded results files (tests/data/results/README.md)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from fmspec.reports import cli, html, schema
from fmspec.reports import tables as tb

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "results"
ALL = ["conformance.json", "mutants.json", "truncated.json", "killed.json", "bench_h100.json", "bench_h200.json"]


def paths(*names: str) -> list[Path]:
    return [DATA / n for n in (names or ALL)]


@pytest.fixture(scope="module")
def results() -> tb.Results:
    return tb.Results(tb.load_runs(paths()))


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> str:
    """The report of every recorded file, built by the command line in a fresh process."""
    out = tmp_path_factory.mktemp("report") / "report.html"
    proc = subprocess.run([sys.executable, "-m", "reports", "build", *map(str, paths()), "-o", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stderr and "partial" in proc.stderr
    return out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def page(report) -> "Elements":
    return Elements(report)


class Elements(HTMLParser):
    """Every element with its attributes and direct text, in document order (enough to check a report)."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[dict] = []
        self.stack: list[dict] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        el = {"tag": tag, "attrs": dict(attrs), "text": "", "parents": [p["tag"] + "#" + p["attrs"].get("id", "")
                                                                       for p in self.stack]}
        self.elements.append(el)
        if tag not in ("meta", "br", "img", "input", "link", "path", "use", "rect"):
            self.stack.append(el)

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i]["tag"] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        for el in self.stack:
            el["text"] += data

    def ids(self) -> set[str]:
        return {e["attrs"]["id"] for e in self.elements if "id" in e["attrs"]}

    def find(self, tag: str, inside: str | None = None) -> list[dict]:
        return [e for e in self.elements if e["tag"] == tag and (inside is None or any(p.endswith("#" + inside)
                                                                                      for p in e["parents"]))]


# ------------------------------------------------------------------------------------------------ loading
def test_complete_file_is_not_partial():
    doc = schema.load(DATA / "conformance.json")
    assert doc["partial"] is False and doc["notes"] == []
    assert {t["candidate"] for t in doc["tests"]} == {"reference", "template", "torch_native"}


def test_truncated_file_is_read_up_to_its_last_complete_record():
    full = schema.load(DATA / "mutants.json")
    cut = schema.load(DATA / "truncated.json")
    assert cut["partial"] and cut["truncated"]
    assert any("truncated" in n for n in cut["notes"])
    assert 0 < len(cut["tests"]) < len(full["tests"])
    for got, want in zip(cut["tests"], full["tests"]):  # what was read is what was written
        assert got["nodeid"] == want["nodeid"] and got["outcome"] == want["outcome"]


def test_killed_run_is_partial_and_keeps_the_journal_tests():
    doc = schema.load(DATA / "killed.json")
    journal = (DATA / "killed.json.journal").read_text().splitlines()
    assert doc["status"] == "running" and doc["partial"] and not doc["truncated"]
    assert len(doc["tests"]) == len(journal) > 0


@pytest.mark.parametrize("text", ['{"sche', "hello", "", '[1, 2, 3]'], ids=["header-cut", "not-json", "empty", "list"])
def test_unusable_file_raises_results_error(tmp_path, text):
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(schema.ResultsError, match="bad.json"):
        schema.load(p)


def test_unknown_schema_version_raises(tmp_path):
    doc = json.loads((DATA / "conformance.json").read_text())
    doc["version"] = 99
    p = tmp_path / "v99.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(schema.ResultsError, match="version 99 is not supported"):
        schema.load(p)


def test_benchmark_records_get_their_candidate_name_and_component():
    raw = json.loads((DATA / "bench_h100.json").read_text())
    assert raw["benchmarks"][0]["candidate"].startswith("Candidate(name=")  # as the plugin writes it today
    doc = schema.load(DATA / "bench_h100.json")
    assert {b["candidate"] for b in doc["benchmarks"]} == {"reference", "torch_native", "mine", "buggy"}
    assert {b["component"] for b in doc["benchmarks"]} == {"flash"}


# ------------------------------------------------------------------------------------------------- tables
def test_same_candidate_in_several_files_gets_one_entry_each(results):
    labels = [e.label for e in results.entries]
    assert len(labels) == len(set(labels))
    assert "reference @ conformance" in labels and "reference @ killed" in labels
    assert "mine @ 2026-11-20 10:00" in labels and "mine @ 2026-11-21 10:00" in labels


def test_one_colour_per_entry(results):
    colours = [e.colour for e in results.entries]
    assert len(colours) == len(set(colours))


def test_speedup_vs_reference_is_the_ratio_of_medians_in_the_same_run(results):
    b = results.benchmarks
    doc = schema.load(DATA / "bench_h100.json")
    med = {(r["candidate"], tuple(sorted(r["params"].items()))): r["stats"]["median"] for r in doc["benchmarks"]}
    rows = b[(b["candidate"] == "mine") & (b["device"] == "NVIDIA H100 80GB HBM3")]
    assert len(rows) == 20
    for r in rows.itertuples():
        key = tuple(sorted(r.params.items()))
        assert r.speedup_vs_reference == pytest.approx(med[("reference", key)] / med[("mine", key)])


def test_bench_tests_do_not_count_as_conformance(results):
    m = results.matrix()
    cell = m[(m["entry"] == "mine @ 2026-11-20 10:00") & (m["component"] == "flash")].iloc[0]
    assert cell.total == 6 and cell.state == "pass"


def test_missing_reasons_are_read_in_one_form():
    """Whatever exception names the harness put in front of a reason, the reader removes them."""
    forms = ["Missing: NotImplementedError: posenc.sinusoidal",
             "suites.outcomes.Missing: Missing: NotImplementedError: posenc.sinusoidal",
             "fmspec.outcomes.Missing: NotImplementedError: posenc.sinusoidal"]
    assert {schema.reason("missing", f) for f in forms} == {"NotImplementedError: posenc.sinusoidal"}
    assert schema.reason("missing", "suites.outcomes.Missing: candidate 'x' has no bpe.train") == \
        "candidate 'x' has no bpe.train"
    assert schema.reason("unsupported", "fmspec.outcomes.Unsupported: flash on cpu") == "flash on cpu"
    assert schema.reason("failed", "Missing: x") == "Missing: x"  # a failure's message is kept as written


def test_a_function_missing_in_two_forms_is_listed_once(tmp_path):
    """A file where half the template's missing posenc tests say ``Missing: NotImplementedError: ...`` and
    half ``suites.outcomes.Missing: Missing: NotImplementedError: ...`` (as runs of different versions
    wrote them): the report lists posenc.sinusoidal once."""
    doc = json.loads((DATA / "missing_cpu.json").read_text())
    template = [t for t in doc["tests"] if t["candidate"] == "template" and t["component"] == "posenc"]
    for i, t in enumerate(template):
        assert t["message"].endswith("NotImplementedError: posenc.sinusoidal")
        t["message"] = ("suites.outcomes.Missing: Missing: " if i % 2 else "Missing: ") + \
            "NotImplementedError: posenc.sinusoidal"
    p = tmp_path / "two-forms.json"
    p.write_text(json.dumps(doc))
    results = tb.Results(tb.load_runs([p]))
    t = results.tests
    assert set(t[(t["candidate"] == "template") & (t["outcome"] == "missing")]["message"]) == \
        {"NotImplementedError: flash.flash_attention", "NotImplementedError: posenc.sinusoidal"}
    text = html.render(results)
    detail = text[text.index('id="m-c-template-posenc"'):]
    detail = detail[:detail.index("</div>")]
    assert detail.count("posenc.sinusoidal") == 1 and "Missing:" not in detail


def test_skipped_tests_are_counted_apart_from_the_denominator():
    """No CUDA: flash's GPU tests are skipped; 31 passed of 31 counted, the 15 skipped beside it."""
    results = tb.Results(tb.load_runs([DATA / "course_cpu.json"]))
    m = results.matrix()
    cell = m[m["component"] == "flash"].iloc[0]
    assert (cell.passed, cell.counted, cell.apart, cell.state) == (31, 31, 15, "pass")
    row = Elements(html.render(results)).find("tr", inside="matrix-table")[1]["text"]
    assert "31/31 · 15 skipped" in " ".join(row.split())


def test_a_feature_missing_altogether_is_missing_not_unsupported():
    """The template has no flash: its tests unsupported in float16/bfloat16 are missing like the rest (the
    file's outcome kept in ``recorded``); torch_native has flash in part, its unsupported tests stay so."""
    results = tb.Results(tb.load_runs([DATA / "missing_cpu.json"]))
    m = results.matrix().set_index(["entry", "component"])
    assert (m.loc[("template", "flash"), "unsupported"], m.loc[("template", "flash"), "missing"]) == (0, 31)
    assert m.loc[("torch_native", "flash"), "unsupported"] == 3
    t = results.tests
    moved = t[(t["candidate"] == "template") & (t["recorded"] == "unsupported")]
    assert len(moved) == 3 and set(moved["outcome"]) == {"missing"}
    assert set(moved["message"]) == {"NotImplementedError: flash.flash_attention"}
    row = Elements(html.render(results)).find("tr", inside="matrix-table")[1]["text"]
    assert "U" not in row.replace("template", "") and "0/31" in row


# ------------------------------------------------------------------------------------------------- report
def test_report_is_byte_stable(results, report):
    """The same inputs give the same bytes: in this process and in the command line's own."""
    assert html.render(results) == report


def test_report_is_small(report):
    assert len(report.encode("utf-8")) < 600_000, f"{len(report.encode()) // 1024} KiB for {len(ALL)} inputs"


def test_report_loads_nothing_from_outside(report, page):
    for el in page.elements:
        for attr in ("src", "href", "xlink:href", "action", "data"):
            value = el["attrs"].get(attr)
            assert value is None or value.startswith("#"), f"<{el['tag']} {attr}={value!r}>"
        assert el["tag"] not in ("link", "img", "iframe", "object", "embed", "base")
    assert not re.search(r"url\((?!#)", report), "a CSS url() that is not a fragment"
    assert "@import" not in report


def test_csp_forbids_external_loads_and_allows_the_script_by_hash(report, page):
    meta = [e for e in page.find("meta") if e["attrs"].get("http-equiv") == "Content-Security-Policy"]
    assert len(meta) == 1
    policy = meta[0]["attrs"]["content"]
    assert "default-src 'none'" in policy and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    scripts = [e for e in page.find("script") if "type" not in e["attrs"]]
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0]["text"].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in policy


def test_matrix_has_every_entry_and_component_with_counts(results, report, page):
    rows = [e for e in page.find("tr", inside="matrix-table") if e["parents"][-1].startswith("tbody")]
    assert len(rows) == len(results.entries)
    heads = [e["text"] for e in page.find("th", inside="matrix-table")]
    assert heads == ["candidate", *results.components, "all"] == ["candidate", "flash", "posenc", "quant", "all"]
    text = {e["attrs"].get("id"): e["text"] for e in rows}
    row = text[next(e.anchor for e in results.entries if e.label == "posenc_float32 @ mutants")]
    assert "1/13" in row and "12✗" in row
    row = text[next(e.anchor for e in results.entries if e.label == "template")]
    assert "0/13" in row and "13M" in row and "57M" in row


def test_matrix_cells_are_coloured_by_state(results, report, page):
    states = {}
    for td in page.find("td", inside="matrix-table"):
        cls = td["attrs"].get("class", "").split()
        if "cell" in cls:
            states.setdefault(cls[1], 0)
            states[cls[1]] += 1
    assert set(states) == {"pass", "fail", "missing", "none"}


def test_every_link_has_its_anchor(report, page):
    ids = page.ids()
    links = [e["attrs"]["href"][1:] for e in page.find("a") if e["attrs"].get("href", "").startswith("#")]
    assert links and not [x for x in links if x not in ids]
    assert len(ids) == len([e for e in page.elements if "id" in e["attrs"]]), "duplicate ids"


def test_failures_show_message_minimal_example_and_reproduce_command(report, page):
    boxes = [e["text"] for e in page.elements if "failure" in e["attrs"].get("class", "").split()]
    box = next(b for b in boxes if "posenc_base_1000" in b and "test_matches_closed_form" in b)
    assert "rel. error 0.00785 > allowed" in box
    assert "Failing test case: test_matches_closed_form(" in box and "num_positions=2" in box
    assert "pytest 'suites/test_posenc.py::test_matches_closed_form[posenc_base_1000]' --candidate" in box


def test_partial_inputs_are_marked(results, report, page):
    partial = {e.anchor for e in results.entries if e.run.partial}
    marked = {e["attrs"]["id"] for e in page.find("tr", inside="matrix-table")
              if "partial" in e["text"] and "id" in e["attrs"]}
    assert partial == marked and len(partial) == 4
    notes = next(e["text"] for e in page.elements if e["attrs"].get("id") == "notes")
    assert "truncated.json: file truncated" in notes and "killed.json: run status 'running'" in notes


def test_speed_only_for_conformant_cells(report):
    speed = report[report.index('id="speed"'):report.index('id="measurements"') if 'id="measurements"' in report
                   else report.index('id="provenance"')]
    assert "Not shown, failed conformance: buggy (flash)" in speed
    tables = re.findall(r"<tbody>(.*?)</tbody>", speed, re.S)
    assert tables and not any(">buggy<" in t for t in tables)


def test_devices_are_never_mixed(results, report, page):
    heads = [e["text"] for e in page.find("h3") if e["text"].startswith("Device: ")]
    assert heads == ["Device: NVIDIA H100 80GB HBM3", "Device: NVIDIA H200"]
    b = results.benchmarks
    h200 = report[report.index("Device: NVIDIA H200"):report.index('id="provenance"')]
    assert "torch_native" not in h200  # it ran only on the H100
    assert set(b[b["device"] == "NVIDIA H200"]["entry"]) == {"reference @ bench_h200", "mine @ 2026-11-21 10:00"}
    assert "results come from 3 devices" in report


def test_plots_are_inline_svg_in_each_entrys_colour(results, report):
    svgs = re.findall(r"<svg.*?</svg>", report, re.S)
    assert len(svgs) >= 4
    assert not any("<script" in s for s in svgs)
    h100 = [e for e in results.entries if e.run.device.startswith("NVIDIA H100") and e.candidate != "buggy"]
    first = svgs[0]
    for e in h100:
        assert e.colour.lower() in first.lower() and e.label in first
    buggy = next(e for e in results.entries if e.candidate == "buggy")
    assert not any(buggy.colour.lower() in s.lower() for s in svgs)


def test_provenance_for_every_entry(results, report, page):
    ids = page.ids()
    for e in results.entries:
        assert f"p-{e.anchor}" in ids
    for field in ("device", "torch", "commit", "hypothesis profile", "hypothesis seed", "started", "command"):
        assert report.count(f"<dt>{field}</dt>") == len(results.entries)


def test_raw_data_is_embedded_and_round_trips(results, report):
    m = re.search(r'<script type="application/octet-stream" id="fmspec-raw"[^>]*>(.*?)</script>', report, re.S)
    raw = json.loads(gzip.decompress(base64.b64decode(m.group(1))))
    assert [i["file"] for i in raw["inputs"]] == ALL
    for item, run in zip(raw["inputs"], results.runs):
        assert item["sha256"] == hashlib.sha256(run.path.read_bytes()).hexdigest()
        assert item["results"]["tests"] == json.loads(json.dumps(run.doc["tests"]))


def test_untrusted_text_is_escaped(tmp_path):
    doc = json.loads((DATA / "mutants.json").read_text())
    evil = "<script>alert(1)</script>"
    for t in doc["tests"]:
        t["candidate"] = evil
        t["message"] = f"AssertionError: {evil} </script><img src=x>"
    doc["candidates"] = [{"name": evil, "source": evil, "version": "1"}]
    p = tmp_path / "evil.json"
    p.write_text(json.dumps(doc))
    text = html.build([p])
    assert "<script>alert" not in text and "<img src=x>" not in text
    assert text.count("<script") == 2  # the raw data and the page's own script


def test_empty_inputs_still_render(tmp_path):
    doc = json.loads((DATA / "conformance.json").read_text())
    doc.update(tests=[], benchmarks=[], candidates=[])
    p = tmp_path / "empty.json"
    p.write_text(json.dumps(doc))
    text = html.build([p])
    assert "No test failed." in text and "No benchmark records" in text


# ---------------------------------------------------------------------------------------------------- CLI
def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = cli.main(args)
    except SystemExit as exc:  # argparse
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_build_writes_the_report(tmp_path, capsys):
    out = tmp_path / "sub" / "r.html"
    code, _, err = run_cli(["build", *map(str, paths("conformance.json", "truncated.json")), "-o", str(out)], capsys)
    assert code == 0 and out.read_text().startswith("<!DOCTYPE html>")
    assert "truncated.json: file truncated" in err and "reported as partial" in err


@pytest.mark.parametrize("case", ["missing-file", "unknown-version", "not-json", "header-cut"])
def test_cli_bad_results_exit_2_with_one_line(tmp_path, capsys, case):
    p = tmp_path / f"{case}.json"
    if case == "unknown-version":
        p.write_text(json.dumps({"schema": schema.SCHEMA, "version": 2}))
    elif case == "not-json":
        p.write_text("<html>")
    elif case == "header-cut":
        p.write_text('{"schema": "fmspec-res')
    for command in (["build", str(p), "-o", str(tmp_path / "r.html")], ["gate", str(p), "--policy",
                    str(ROOT / "reports/policies/course.toml")], ["export", "junit", str(p), "-o", str(tmp_path / "j.xml")]):
        code, out, err = run_cli(command, capsys)
        assert code == 2, (command, err)
        assert len(err.strip().splitlines()) == 1 and p.name in err and "error:" in err
    assert not (tmp_path / "r.html").exists()


def test_cli_usage_error_exits_2(capsys):
    code, _, err = run_cli(["build"], capsys)
    assert code == 2 and "RESULTS" in err


# ---------------------------------------------------------------------------------------------- speed pages
@pytest.fixture(scope="module")
def cpu_report() -> str:
    return html.build([DATA / "bench_cpu.json"])


def section(report: str, heading_id: str) -> str:
    start = report.index(f'id="{heading_id}"')
    end = report.find("<h3 id=", start + 1)
    return report[start:end if end > 0 else len(report)]


def test_speed_tables_show_what_the_benchmarks_recorded(cpu_report):
    """Throughput, time per unit, ratios and memory, in their units; not only the median time."""
    attention = section(cpu_report, "d0-attention")
    assert "<th>GFLOP/s</th>" in attention and "<th>largest memory (float32)</th>" in attention
    assert ">512 MiB<" in attention and ">512 KiB<" in attention  # 2·T² float32 at T = 8192 and 256
    bpe = section(cpu_report, "d0-bpe")
    assert "<th>MB/s</th>" in bpe and "<th>time ÷ hf 1thread</th>" in bpe
    autodiff = section(cpu_report, "d0-autodiff")
    assert "<th>µs/step</th>" in autodiff and "<th>time ÷ f</th>" in autodiff


def test_plots_show_throughput_and_memory_not_only_time():
    assert html.plot_keys(["median_ms", "seconds", "gflop_per_s", "largest_mb_float32", "model_flops"]) == \
        ["gflop_per_s", "largest_mb_float32"]
    assert html.plot_keys(["median_ms", "tflops", "gbps", "peak_bytes", "speedup_vs_reference"]) == \
        ["tflops", "peak_bytes"]
    assert html.plot_keys(["median_ms", "us_per_step", "ratio_to_f"]) == ["us_per_step"]
    assert html.plot_keys(["median_ms", "seconds"]) == ["median_ms"]


def test_axes_spanning_decades_are_logarithmic(cpu_report):
    assert html.log_scale([0.5, 512.0]) and not html.log_scale([2.0, 8.3]) and not html.log_scale([5.0])
    captions = re.findall(r"<figcaption>([^<]*)</figcaption>", cpu_report)
    assert captions == ["test_dense_time_and_memory: GFLOP/s vs t",
                        "test_dense_time_and_memory: largest memory (float32), MiB vs t",
                        "test_gradient_cost_ratio: µs/step vs size (mode=grad)",
                        "test_train_throughput: MB/s vs vocab_size"]
    ticks = [re.findall(r"<text[^>]*>([^<]*)</text>", f) for f in re.findall(r"<figure>(.*?)</figure>", cpu_report, re.S)]
    assert ticks[0][:6] == ["256", "512", "1024", "2048", "4096", "8192"]  # sizes doubling: log2, ticks at the sizes
    assert ["1", "10", "100"] == [x for x in ticks[1] if x in ("1", "10", "100")], ticks[1]  # 0.5 to 512 MiB: decades
    assert "10" not in ticks[0][7:]  # 2 to 8.3 GFLOP/s: linear


def test_no_card_is_empty(tmp_path):
    """Six shapes of one benchmark: four plots, and a note for the rest; never a figure with nothing in it."""
    doc = json.loads((DATA / "bench_cpu.json").read_text())
    extra = []
    for b in doc["benchmarks"]:
        if b["name"].startswith("test_dense_time_and_memory"):
            for h in range(1, 7):
                extra.append({**b, "nodeid": b["nodeid"] + f"-h{h}", "name": b["name"] + f"-h{h}",
                              "params": {**b["params"], "h": str(h)}})
    doc["benchmarks"] = extra
    p = tmp_path / "many.json"
    p.write_text(json.dumps(doc))
    text = html.build([p])
    figures = re.findall(r"<figure>(.*?)</figure>", text, re.S)
    assert len(figures) == 8 and all("<svg" in f for f in figures)
    assert "test_dense_time_and_memory: 2 more shape(s) in the table, not plotted" in text
