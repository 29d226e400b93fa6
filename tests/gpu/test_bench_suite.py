"""The GPU benchmark suite follows the harness contract (cases, derive, report) and runs a case."""

from __future__ import annotations

import pytest

from benchmarks import harness, suite_gpu


def test_cases_and_devices(monkeypatch):
    monkeypatch.setenv("COMPOSITE_BENCH_DEVICES", "numpy,torch-cpu")
    config = harness.Config.make(sizes=[(64, 48)])
    names = [c.name for c in suite_gpu.cases(config)]
    assert "chain.key_despill_match_over@64x48" in names and "recipe.key_greenscreen@64x48" in names
    assert {f"stage.{s}@64x48" for s in suite_gpu.STAGES} <= set(names)
    assert len(names) == len(set(names))
    assert suite_gpu.devices() == ["numpy", "torch-cpu"]


def test_derive_reports_rates_shares_and_the_goal(monkeypatch):
    monkeypatch.setenv("COMPOSITE_BENCH_DEVICES", "numpy,cuda")
    config = harness.Config.make(sizes=[(1920, 1080)])
    chain = "chain.key_despill_match_over@1920x1080"
    rows = [{"case": f"{chain}[numpy]", "ms_per_frame": 300.0},
            {"case": f"{chain}[cuda]", "ms_per_frame": 8.0},
            {"case": f"{chain}[cuda_resident]", "ms_per_frame": 4.0},
            {"case": f"{chain}[cuda_batch8]", "variant": "cuda_batch8", "ms_per_frame": 0.1, "ms_mean": 2.5},
            {"case": "transfer.h2d@1920x1080[cuda]", "ms_per_frame": 1.0},
            {"case": "transfer.d2h@1920x1080[cuda]", "ms_per_frame": 1.5},
            {"case": "io.exr_read@1920x1080", "ms_per_frame": 20.0},
            {"case": "io.exr_write@1920x1080", "ms_per_frame": 30.0},
            {"case": "recipe.key_greenscreen@1920x1080[cuda]", "ms_per_frame": 55.0}]
    d = {r["name"]: r["value"] for r in suite_gpu.derive(rows, config)}
    assert d["1920x1080 key+despill+match+over on cuda_resident"] == pytest.approx(250.0)
    assert d["1920x1080 key+despill+match+over on cuda_batch8"] == pytest.approx(400.0)   # mean, not median
    assert d["1920x1080 transfer share of the chain on cuda"] == pytest.approx(100 * 3.5 / 8.0)
    assert d["1920x1080 EXR I/O share of the key_greenscreen recipe on cuda"] == pytest.approx(100 * 50 / 55)
    assert d["goal: HD chain on CUDA above 200 frames/s (1 = met)"] == 1.0
    assert "Goal on an NVIDIA H100" in suite_gpu.report(config)["markdown"]


def test_a_case_runs_in_the_measuring_child(monkeypatch):
    monkeypatch.setenv("COMPOSITE_BENCH_DEVICES", "numpy,torch-cpu")
    config = harness.Config.make(sizes=[(32, 24)], frames=1)
    report = harness.run(config, suites=["gpu"], case_filter="stage.over@", log=lambda m: None)
    rows = {r["case"]: r for r in report["suites"]["gpu"]["cases"]}
    assert set(rows) == {"stage.over@32x24[numpy]", "stage.over@32x24[torch-cpu]"}
    assert all(r["ms_per_frame"] > 0 for r in rows.values()), rows


def test_device_option_of_the_suite_entry_point(monkeypatch):
    seen = {}
    monkeypatch.setattr(harness, "main", lambda argv: seen.setdefault("argv", argv) and 0)
    monkeypatch.setenv("COMPOSITE_BENCH_DEVICES", "before")       # restored after the test
    suite_gpu.main(["--device", "cuda", "--sizes", "1920x1080"])
    assert seen["argv"] == ["--suite", "gpu", "--sizes", "1920x1080"]
    import os

    assert os.environ["COMPOSITE_BENCH_DEVICES"] == "numpy,cuda"
