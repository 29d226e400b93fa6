"""The benchmark harness: child-process measurements, variants, derived overheads, peer ratios, reports."""

import json
import types

import numpy as np
import pytest

from benchmarks import harness, suite_core
from benchmarks.harness import Case, Config


def test_tiny_run_gives_a_well_formed_report(tmp_path):
    config = Config.make(sizes=[(32, 24)], frames=2)
    report = harness.run(config, suites=["core", "nonexistent"], case_filter="merge.over@", log=lambda m: None)
    assert report["schema"] == "composite.bench/1"
    assert report["machine"]["logical_cpus"] >= 1 and "numpy" in report["machine"]["versions"]
    assert "skipped" in report["suites"]["nonexistent"]
    rows = report["suites"]["core"]["cases"]
    assert [r["case"] for r in rows] == ["merge.over@32x24"]
    r = rows[0]
    assert "error" not in r, r.get("traceback")
    assert r["size"] == "32x24" and r["frames"] == 2 and r["tool"] == "composite"
    assert 0 < r["ms_min"] <= r["ms_per_frame"] <= r["ms_max"]
    assert r["fps"] == pytest.approx(1000.0 / r["ms_per_frame"])
    assert r["peak_rss_mb"] > 10 and r["peak_delta_mb"] >= 0
    # One frame of over on 32x24 RGBA float32 allocates at least its 12 KiB output.
    assert r["alloc_peak_mb"] >= 32 * 24 * 4 * 4 / 2 ** 20
    jp, mp = harness.write_report(report, json_path=tmp_path / "r.json")
    assert json.loads(jp.read_text())["suites"]["core"]["cases"][0]["case"] == "merge.over@32x24"
    md = mp.read_text()
    assert "| merge.over@32x24 | composite | 32x24 |" in md and "## core" in md


def test_graph_overhead_is_measured_per_stage():
    config = Config.make(quick=True, sizes=[(32, 24)])
    report = harness.run(config, suites=["core"], case_filter="graph.noop_chain", log=lambda m: None)
    rows = {r["case"]: r for r in report["suites"]["core"]["cases"]}
    assert "graph.noop_chain.N64[pipeline_N64]" in rows and "graph.noop_chain.N64[direct_N0]" in rows
    derived = {d["name"]: d for d in report["suites"]["core"]["derived"]}
    over = derived["graph overhead per stage per frame (NoOp: Pipeline - direct call)"]
    assert over["unit"] == "us" and 0.05 < over["value"] < 500
    assert derived["fingerprint per stage per frame"]["value"] > 0


def _fake_suite(steps):
    def setup(**_):
        return steps

    return types.SimpleNamespace(cases=lambda config: [Case("fake", setup, {"width": 4, "height": 2}, units=2)])


def test_variants_are_timed_interleaved(monkeypatch):
    calls = []
    steps = {"a": lambda i: calls.append(("a", i)), "b": lambda i: calls.append(("b", i))}
    monkeypatch.setattr(harness, "load_suite", lambda name: _fake_suite(steps))
    raw = harness.measure("fake", "fake", Config.make(sizes=[(4, 2)], frames=3))
    # Warm-up frame 0, then frames 1..3 interleaved with the order rotated each frame, then one traced
    # frame each.
    assert calls == [("a", 0), ("b", 0), ("b", 1), ("a", 1), ("a", 2), ("b", 2), ("b", 3), ("a", 3),
                     ("a", 4), ("b", 4)]
    rows = harness._summarise(Case("fake", None, {"width": 4, "height": 2}, units=2), "s", raw)
    assert [r["case"] for r in rows] == ["fake[a]", "fake[b]"]
    assert all(r["frames"] == 3 and r["size"] == "4x2" for r in rows)
    assert rows[0]["us_per_unit"] == pytest.approx(rows[0]["ms_per_frame"] * 1e3 / 2)


def test_peer_ratios_and_batches():
    case = Case("x.peer", None, {"width": 8, "height": 8}, tool="oiiotool", batch=4, compare="x")
    (peer,) = harness._summarise(case, "core", {"times_s": {"": [0.4, 0.8]}, "setup_s": 0, "rss_before_mb": 1,
                                                 "peak_rss_mb": 2, "memory_method": "m", "peer_rss_mb": 30})
    assert peer["ms_per_frame"] == pytest.approx(150.0)  # median of 100 and 200 ms per frame
    assert peer["frames"] == 8 and peer["peer_rss_mb"] == 30
    base = {"suite": "core", "case": "x", "ms_per_frame": 50.0}
    (ratio,) = harness.peer_ratios([base, peer])
    assert ratio["speedup"] == pytest.approx(3.0) and ratio["tool"] == "oiiotool"


def test_derive_pins_the_arithmetic():
    n = suite_core.CHAIN
    c = f"graph.noop_chain.N{n}"
    ms = {f"{c}[pipeline_N{n}]": 0.5, f"{c}[pipeline_N0]": 0.1, f"{c}[direct_N{n}]": 0.02, f"{c}[direct_N0]": 0.01}
    rows = [{"case": k, "ms_min": v, "ms_per_frame": v} for k, v in ms.items()]
    d = {r["name"]: r["value"] for r in suite_core.derive(rows, Config.make(sizes=[(8, 8)]))}
    assert d["NoOp stage through Pipeline.evaluate, per stage per frame"] == pytest.approx(400.0 / n)
    assert d["graph overhead per stage per frame (NoOp: Pipeline - direct call)"] == pytest.approx(390.0 / n)


def test_suite_without_contract_is_skipped(monkeypatch):
    monkeypatch.setattr(harness, "discover_suites", lambda: ["bare"])
    monkeypatch.setattr(harness, "load_suite", lambda name: types.SimpleNamespace())
    report = harness.run(Config.make(), suites=["bare"], log=lambda m: None)
    assert "does not follow the suite contract" in report["suites"]["bare"]["skipped"]
    assert "Skipped:" in harness.to_markdown(report)


def test_child_errors_become_rows(monkeypatch, capsys):
    def setup(**_):
        raise RuntimeError("broken input")

    monkeypatch.setattr(harness, "load_suite",
                        lambda name: types.SimpleNamespace(cases=lambda c: [Case("bad", setup)]))
    payload = json.dumps({"suite": "x", "case": "bad", "config": Config.make().to_json()})
    assert harness._child_main(payload) == 0
    out = capsys.readouterr().out
    raw = json.loads(out[out.index("@@BENCH@@") + 9:])
    assert raw["error"] == "RuntimeError: broken input" and "Traceback" in raw["traceback"]
    rows = harness._summarise(Case("bad", setup), "x", raw)
    assert rows[0]["error"] == "RuntimeError: broken input" and "ms_per_frame" not in rows[0]
    md = harness.to_markdown({"date": "d", "machine": {}, "config": Config.make().to_json(),
                              "suites": {"x": {"cases": rows, "derived": []}}, "peers": []})
    assert "| bad | composite | - | error |" in md


def test_core_cases_cover_the_brief():
    names = [c.name for c in suite_core.cases(Config.make())]
    for expected in ("merge.over@1920x1080", "merge.plus@3840x2160", "reformat.half.cubic@3840x2160",
                     "reformat.double.lanczos@1920x1080", "transform.rotate_scale.bilinear@1920x1080",
                     "pipeline.comp@3840x2160", "graph.noop_chain.N64", "graph.cheap_chain.N64",
                     "io.exr_over.oiiotool@1920x1080"):
        assert expected in names
    assert len(set(names)) == len(names)
    peers = [c for c in suite_core.cases(Config.make()) if c.compare]
    assert all(p.compare in names for p in peers)


def test_composite_bench_command(capsys):
    from composite.cli.app import run

    assert run(["bench", "--list", "--suite", "core", "--case", "graph.cheap"]) == 0
    out = capsys.readouterr().out
    assert "core: graph.cheap_chain.N64 [composite]" in out


def test_sizes_argument():
    import argparse

    ap = argparse.ArgumentParser()
    harness.add_arguments(ap)
    args = ap.parse_args(["--sizes", "64x32,128x64", "--frames", "2"])
    assert args.sizes == [(64, 32), (128, 64)]
    with pytest.raises(SystemExit):
        ap.parse_args(["--sizes", "64by32"])
    np.testing.assert_equal(Config.make(quick=True).sizes, harness.QUICK_SIZES)
