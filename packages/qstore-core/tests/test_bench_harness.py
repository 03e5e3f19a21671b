"""The benchmark harness: timing statistics, result files, ratios, report and the command.

The benchmarks themselves never run here; one tiny real run (RW at n = 4, one repetition, the
local backend only) checks that the command writes what it promises.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qstore.core.bench import Options, Result, Run, Timing, load_runs, measure, write_run
from qstore.core.bench.harness import BenchError
from qstore.core.bench.report import format_value, merge_results, peer_ratios, render_markdown
from qstore.core.bench.runner import Predictor
from qstore.core.cli import main


def test_median_and_interquartile_range_of_timings() -> None:
    t = Timing.from_times([5.0, 1.0, 4.0, 2.0, 3.0], warmup_s=9.0)
    assert t.median_s == 3.0
    assert t.quartiles_s == (2.0, 4.0)  # inclusive method: the 25th and 75th percentiles
    assert t.iqr_s == 2.0
    assert (t.reps, t.warmup_s) == (5, 9.0)
    assert Timing.from_times([0.5]).iqr_s == 0.0
    with pytest.raises(BenchError):
        Timing.from_times([])


def test_measure_warms_up_then_repeats_at_least_reps_times() -> None:
    calls: list[int] = []
    t = measure(lambda: calls.append(1), reps=7, min_time_s=0.0, warmup=2)
    assert t.reps == 7 and len(calls) == 9


def test_measure_stops_at_the_budget_with_fewer_reps() -> None:
    t = measure(lambda: time.sleep(0.02), reps=50, budget_s=0.01)
    assert t.reps == 1


def test_rate_result_from_timing_and_its_range() -> None:
    r = Result.rate("rw", "x", "forward", Timing.from_times([0.1, 0.2, 0.4]), per_call=32, n=8)
    assert r.value == pytest.approx(160.0)
    lo, hi = r.value_range or (0.0, 0.0)
    assert lo == pytest.approx(32 / 0.3) and hi == pytest.approx(32 / 0.15)
    assert r.higher_is_better and r.unit == "samples/s"
    d = Result.seconds("fm", "y", "fit time", Timing.from_times([3.0, 1.0, 2.0]))
    assert (d.value, d.unit, d.higher_is_better) == (2.0, "s", False)


def _rw(contender: str, value: float, kind: str = "qstore", n: int = 8, threads: int = 1) -> Result:
    return Result("rw", contender, "forward", value, "samples/s", n=n, kind=kind, threads=threads)


def test_ratios_are_against_the_best_peer_of_the_same_case() -> None:
    ours = _rw("ours", 600.0)
    rs = [
        ours,
        _rw("slow peer", 100.0, "peer"),
        _rw("fast peer", 200.0, "peer"),
        _rw("ours", 50.0, n=16),
        _rw("peer at 16", 25.0, "peer", n=16),
        _rw("ours", 1.0, threads=2),  # no peer with 2 threads: no ratio
    ]
    ratios = peer_ratios(rs)
    assert ratios[ours.key()] == (3.0, "fast peer")
    assert ratios[rs[3].key()] == (2.0, "peer at 16")
    assert rs[5].key() not in ratios


def test_ratios_of_durations_are_speedups() -> None:
    ours = Result("fm", "q", "fit time", 10.0, "s", kind="qstore", higher_is_better=False)
    tfq = Result("fm", "tfq", "fit time", 70.0, "s", kind="peer", higher_is_better=False)
    assert peer_ratios([ours, tfq])[ours.key()] == (7.0, "tfq")


def test_json_round_trip_and_merge(tmp_path: Path) -> None:
    run = Run("rw", env="bench", threads=1)
    run.add(_rw("ours", 600.0, threads=1))
    run.note("skipped x: not installed")
    path = write_run(run, tmp_path)
    assert path.name == "rw-bench-t1.json"
    data = json.loads(path.read_text())
    assert data["schema"] == "qstore-bench/1"
    for key in ("machine", "versions", "thread_settings", "started", "finished"):
        assert key in data
    assert "numpy" in data["versions"] and "OMP_NUM_THREADS" in data["thread_settings"]
    later = Run("rw", env="tfq", threads=1)
    later.add(_rw("tfq", 200.0, "peer", threads=1))
    later.add(_rw("ours", 700.0, threads=1))  # the same figure again, measured later
    write_run(later, tmp_path)
    (tmp_path / "other.json").write_text('{"not": "ours"}')
    runs = load_runs([tmp_path])
    assert len(runs) == 2
    merged = {r.contender: r for r in merge_results(runs)}
    assert merged["ours"].value in (600.0, 700.0) and set(merged) == {"ours", "tfq"}
    assert merged["ours"].env in ("bench", "tfq")
    with pytest.raises(BenchError):
        Result.from_dict({**merged["ours"].as_dict(), "bogus": 1})


def test_markdown_table_shows_figures_ratios_and_notes() -> None:
    run = Run("rw", env="bench", threads=2)
    run.add(Result.rate("rw", "qstore local", "forward", Timing.from_times([0.01]), 32, n=8))
    run.add(
        Result.rate("rw", "pennylane", "forward", Timing.from_times([0.04]), 32, n=8, kind="peer")
    )
    run.note("skipped tfq: not installed")
    doc = run.as_dict()
    doc["results"] = run.results
    text = render_markdown([doc])
    assert "| n | contender | forward (samples/s)" in text
    assert "| 8 | qstore local | 3,200 | - | 4.0× (pennylane) |  |" in text
    assert "- skipped tfq: not installed [2 threads]" in text
    assert "## Runs" in text


def test_format_value_keeps_three_significant_digits() -> None:
    assert [format_value(v) for v in (4152.4, 221.2, 2.834, 0.04123)] == [
        "4,152",
        "221",
        "2.83",
        "0.0412",
    ]


def test_predictor_skips_sizes_whose_call_would_exceed_the_limit() -> None:
    p = Predictor(limit_s=10.0)
    p.record("c", 12, 1.0)
    assert p.too_slow("c", 14) is None  # 1 s * 14/12 * 4 = 4.7 s
    assert p.too_slow("c", 16) == pytest.approx(16 / 12 * 16)
    assert p.too_slow("other", 20) is None


def test_options_select_contenders_by_substring_or_pattern() -> None:
    o = Options(contenders=("local", "penny*adjoint"))
    assert o.selected("qstore local complex64")
    assert o.selected("pennylane lightning.qubit adjoint")
    assert not o.selected("qsimcirq sweep")
    assert Options().selected("anything")


def test_bench_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: qstore bench" in out and "fashion-mnist" in out


def test_unknown_suite_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "frobnicate"]) == 1
    assert "unknown suite" in capsys.readouterr().err


def test_importing_the_harness_loads_no_ml_framework() -> None:
    code = (
        "import sys, qstore.core.cli, qstore.core.bench.plugins, qstore.core.demos.fashion_mnist;"
        "import qstore.core.bench.suites.rw, qstore.core.bench.suites.circuits;"
        "import qstore.core.bench.suites.fashion_mnist;"
        "frameworks = {'torch', 'tensorflow', 'keras', 'pennylane', 'qsimcirq', 'matplotlib'};"
        "print(sorted(frameworks & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_tiny_rw_run_writes_json_and_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bench", "rw", "--qubits", "4", "--reps", "1", "--out", str(tmp_path), "--no-plugins"]
    assert main([*argv, "--contenders", "qstore local complex128"]) == 0
    (path,) = tmp_path.glob("rw-*.json")
    data = json.loads(path.read_text())
    figures = {(r["metric"], r["n"], r["contender"]) for r in data["results"]}
    assert figures == {
        ("forward", 4, "qstore local complex128"),
        ("forward+gradient", 4, "qstore local complex128"),
    }
    assert all(r["value"] > 0 and r["reps"] == 1 for r in data["results"])
    report = (tmp_path / "report.md").read_text()
    assert "qstore local complex128" in report
    assert main(["bench", "report", str(tmp_path)]) == 0
    assert "report.md" in capsys.readouterr().out


def test_fashion_table_compares_with_the_classical_twin_and_tfq() -> None:
    def fit(contender: str, seconds: float, kind: str) -> Result:
        return Result(
            "fashion-mnist", contender, "fit time", seconds, "s", group="keras", kind=kind,
            higher_is_better=False, threads=2,
        )  # fmt: skip

    run = Run("fashion-mnist", env="bench", threads=2)
    for r in (
        fit("quantum", 12.0, "qstore"),
        fit("twin", 6.0, "baseline"),
        fit("tfq", 72.0, "peer"),
    ):
        run.add(r)
    run.add(Result("fashion-mnist", "quantum", "test accuracy", 0.851, "fraction", group="keras"))
    run.note("skipped keras tfq: not available here (No module named 'tensorflow_quantum')")
    doc = {**run.as_dict(), "results": run.results}
    text = render_markdown([doc])
    assert "| keras | quantum | 12.0 | 85.1 % | 2.0× | 6.0× |" in text
    assert "skipped keras tfq" not in text  # measured in another file: the note is stale


def test_circuits_table_compares_with_the_seed() -> None:
    run = Run("circuits", env="bench", threads=1)
    run.add(Result("circuits", "ours", "circuits/s", 5700.0, "circuits/s", n=8, group="batch"))
    text = render_markdown([{**run.as_dict(), "results": run.results}])
    assert "| batch | ours | 5,700 | - | 10,000× |" in text
