"""Distributions plug into the ``qstore`` command through entry points: subcommands
(``qstore.cli``), demo trainers (``qstore.demos``) and benchmark contenders (``qstore.bench``).

Each test installs small distributions the way pip would (a ``.dist-info`` directory with
``METADATA`` and ``entry_points.txt``, and their module, on ``sys.path``) and runs the real
command. Nothing here imports a machine-learning framework: the demo's trainer is a softmax
regression in NumPy, the benchmark's peer a dense-unitary simulation.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from qstore.core.bench import load_runs, peer_ratios, plugins
from qstore.core.cli import main
from qstore.core.demos import fashion_mnist as demo

REPO = Path(__file__).resolve().parents[3]
CANDIDATES = [
    Path(os.environ.get("QSTORE_DATA_DIR", "/nonexistent")) / "fashion-mnist",
    REPO.parent / "shared" / "datasets" / "fashion-mnist",
    Path("/usr/share/datasets/fashion-mnist"),
]
DATA = next((d for d in CANDIDATES if (d / "t10k-labels-idx1-ubyte.gz").is_file()), None)

CLI_MODULE = """
def register(sub):
    p = sub.add_parser("greet", help="print a greeting")
    p.add_argument("--times", type=int, default=1)
    p.set_defaults(func=run)


def run(args, out):
    out.write("hello from a plugin\\n" * args.times)
    return 0


def register_clash(sub):
    raise AssertionError("a command that exists already must not be registered again")
"""

DEMO_MODULE = '''
import time

import numpy as np

from qstore.core.demos.fashion_mnist import History


def _scores(model, x, y):
    z = x @ model["w"] + model["b"]
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    loss = float(-np.log(p[np.arange(len(y)), y] + 1e-12).mean())
    return loss, float((p.argmax(axis=1) == y).mean()), p


class NumpyTrainer:
    """Softmax regression on the 64 features: the demo's orchestration without a framework."""

    model_file = "model.npz"

    def build(self, block="quantum", seed=0):
        rng = np.random.default_rng(seed)
        return {"w": rng.normal(0.0, 0.01, (64, 10)), "b": np.zeros(10)}

    def fit(self, model, data, settings):
        n = data.split(settings.validation_split)
        x, y = data.x_train[:n], data.y_train[:n]
        history = History()
        for _ in range(settings.epochs):
            t0 = time.perf_counter()
            for i in range(0, n, settings.batch_size):
                xb, yb = x[i : i + settings.batch_size], y[i : i + settings.batch_size]
                _, _, p = _scores(model, xb, yb)
                p[np.arange(len(yb)), yb] -= 1.0
                model["w"] -= 0.05 * xb.T @ p / len(yb)
                model["b"] -= 0.05 * p.mean(axis=0)
            loss, acc, _ = _scores(model, x, y)
            history.loss.append(loss)
            history.accuracy.append(acc)
            val_loss, val_acc, _ = _scores(model, data.x_train[n:], data.y_train[n:])
            history.val_loss.append(val_loss)
            history.val_accuracy.append(val_acc)
            history.epoch_s.append(time.perf_counter() - t0)
        return history

    def evaluate(self, model, data):
        loss, acc, _ = _scores(model, data.x_test, data.y_test)
        return loss, acc

    def save(self, model, path):
        with open(path, "wb") as fh:
            np.savez(fh, **model)


class NotATrainer:
    pass
'''

BENCH_MODULE = '''
import numpy as np

from qstore.core.bench import Case, Contender
from qstore.core.bench.workload import rw_circuit, rw_data


def _dense(n):
    """RW's <Z_i> from each bound circuit's dense unitary (a peer that simulates differently)."""
    circuit, inputs, weights = rw_circuit(n)
    x, w = rw_data(n)
    shared = dict(zip(weights, map(float, w.ravel())))
    bits = (np.arange(2**n)[:, None] >> (n - 1 - np.arange(n))) & 1
    signs = 1 - 2 * bits

    def forward():
        rows = []
        for row in x:
            u = circuit.bind({**shared, **dict(zip(inputs, map(float, row)))}).unitary()
            rows.append((np.abs(u[:, 0]) ** 2) @ signs)
        return np.array(rows)

    return Case(forward)


def contenders(case):
    if case == "rw":
        return [Contender("toy dense unitary", "peer", _dense), "not a contender"]
    return []


def raising(case):
    raise RuntimeError("this plugin's contenders are broken")
'''


def _distribution(site: Path, name: str, entry_points: str) -> None:
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)


@pytest.fixture
def plugin_site(tmp_path: Path) -> Iterator[Path]:
    """Toy distributions in each group, one of them broken (its module is missing)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "qstore_toy_cli.py").write_text(CLI_MODULE)
    (site / "qstore_toy_demo.py").write_text(DEMO_MODULE)
    (site / "qstore_toy_bench.py").write_text(BENCH_MODULE)
    _distribution(
        site,
        "qstore-toy",
        "[qstore.cli]\ngreet = qstore_toy_cli:register\nbackends = qstore_toy_cli:register_clash\n"
        "[qstore.demos]\nnumpy = qstore_toy_demo:NumpyTrainer\nodd = qstore_toy_demo:NotATrainer\n"
        "[qstore.bench]\ntoy = qstore_toy_bench:contenders\nraising = qstore_toy_bench:raising\n",
    )
    _distribution(
        site,
        "qstore-brokentoy",
        "[qstore.cli]\nbroken = qstore_toy_missing:register\n"
        "[qstore.demos]\nbroken = qstore_toy_missing:Trainer\n"
        "[qstore.bench]\nbroken = qstore_toy_missing:contenders\n",
    )
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    plugins.invalidate_cache()
    try:
        yield site
    finally:
        sys.path.remove(str(site))
        for module in ("qstore_toy_cli", "qstore_toy_demo", "qstore_toy_bench"):
            sys.modules.pop(module, None)
        importlib.invalidate_caches()
        plugins.invalidate_cache()


# -- qstore.cli ------------------------------------------------------------------------------
def test_a_distribution_adds_a_subcommand(
    plugin_site: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="qstore.core.cli"):
        assert main(["greet", "--times", "2"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "hello from a plugin\n" * 2
    # The broken distribution is named with the way out; the clash is refused, not called.
    assert "command 'broken' of qstore-brokentoy could not be loaded" in captured.err
    assert "reinstall qstore-brokentoy" in captured.err
    assert "qstore_toy_cli:register_clash" in caplog.text and "exists already" in caplog.text
    assert main(["backends", "--json"]) == 0  # the built-in command is untouched
    assert json.loads(capsys.readouterr().out)["backends"]


def test_without_the_distribution_the_subcommand_is_unknown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["greet"]) == 2
    assert "invalid choice: 'greet'" in capsys.readouterr().err


# -- qstore.demos ----------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(DATA is None, reason="Fashion-MNIST IDX files not found")
def test_the_demo_trains_with_an_installed_trainer_and_saves_what_it_reports(
    plugin_site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "numpy" in demo.frameworks()
    out = tmp_path / "out"
    argv = ["demo", "fashion-mnist", "--framework", "numpy", "--data-dir", str(DATA)]
    argv += ["--n-train", "2000", "--n-test", "500", "--epochs", "3", "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "Fashion-MNIST demo (numpy)" in text and "Test accuracy:" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["framework"] == "numpy" and summary["n_train"] == 1600
    assert summary["config"]["epochs"] == 3 and summary["n_test"] == 500
    history = summary["history"]
    assert len(history["loss"]) == 3 and history["loss"][2] < history["loss"][0]
    assert summary["test_accuracy"] > 0.6  # ten classes: chance is 0.1
    png = (out / "learning_curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    # The saved model scores what the summary says, on the same test subset.
    weights = np.load(out / "model.npz")
    data = demo.load_data(DATA, 2000, 500, seed=0)
    predicted = (data.x_test @ weights["w"] + weights["b"]).argmax(axis=1)
    assert float((predicted == data.y_test).mean()) == pytest.approx(summary["test_accuracy"])


def test_demo_errors_from_trainers_are_one_line_with_the_fix(
    plugin_site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["demo", "fashion-mnist", "--no-save", "--data-dir", str(tmp_path / "none")]
    assert main([*base, "--framework", "broken"]) == 1
    err = capsys.readouterr().err
    assert "'broken' trainer of qstore-brokentoy" in err and "cannot be loaded" in err
    assert "pip install qstore-brokentoy" in err and "Traceback" not in err
    assert main([*base, "--framework", "odd"]) == 1
    assert "is not a qstore.core.demos.fashion_mnist.Trainer" in capsys.readouterr().err
    # A working trainer gets as far as the data, which is missing here.
    assert main([*base, "--framework", "numpy"]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and "--download" in err
    assert not (tmp_path / "none").exists()


# -- qstore.bench ----------------------------------------------------------------------------
def test_bench_runs_the_contenders_of_installed_distributions(
    plugin_site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bench", "rw", "--qubits", "4", "--reps", "1", "--out", str(tmp_path)]
    argv += ["--contenders", "qstore local complex128", "toy"]
    # Only the toy distributions' contenders: the installed frameworks' would import them.
    assert main([*argv, "--plugins", "toy", "raising", "broken"]) == 0
    (run,) = load_runs([tmp_path])
    by_name = {(r.contender, r.metric): r for r in run["results"]}
    toy = by_name[("toy dense unitary", "forward")]
    assert toy.kind == "peer" and toy.n == 4 and toy.value > 0
    assert ("toy dense unitary", "forward+gradient") not in by_name  # it has no gradient
    local = by_name[("qstore local complex128", "forward")]
    assert peer_ratios(run["results"])[local.key()] == (
        pytest.approx(local.value / toy.value),
        "toy dense unitary",
    )
    notes = "\n".join(run["notes"])
    assert "qstore-brokentoy" in notes and "reinstall qstore-brokentoy" in notes
    assert "this plugin's contenders are broken" in notes
    assert "'not a contender' from qstore-toy" in notes
    assert "toy dense unitary" in (tmp_path / "report.md").read_text()


def test_bench_without_plugins_runs_core_alone(
    plugin_site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bench", "rw", "--qubits", "4", "--reps", "1", "--out", str(tmp_path)]
    argv += ["--contenders", "qstore local complex128", "toy"]
    assert main([*argv, "--no-plugins"]) == 0
    (run,) = load_runs([tmp_path])
    assert {r.contender for r in run["results"]} == {"qstore local complex128"}
    assert run["options"]["plugins"] == [] and not run["notes"]
    assert main([*argv, "--plugins", "toy", "nonesuch"]) == 1
    err = capsys.readouterr().err
    assert "--plugins nonesuch: no installed distribution" in err and "toy" in err
