"""The ``qstore`` command: version, exit codes, backends listing and the demo's numbers."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import qstore.core as qc
from qstore.core.cli import main, run_demo

CORE_SRC = Path(__file__).resolve().parents[1] / "src"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith(f"qstore {qc.__version__} ")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["backends", "--tabular"],
        ["demo", "--qubits", "0"],
        ["demo", "--shots", "x"],
    ],
)
def test_usage_errors_exit_with_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "usage: qstore" in capsys.readouterr().err


def test_errors_exit_with_1_and_one_clean_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--backend", "qsim_typo"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("qstore: error: Unknown backend 'qsim_typo'")
    assert "Did you mean 'qsim'" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_backends_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backends"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    assert header[:3] == ["name", "distribution", "version"]
    assert {"available", "exact/shots", "gradients", "GPU"} <= set(header)
    local = next(line for line in lines if line.startswith("local, local_cpu"))
    assert "qstore-core" in local and "exact+shots" in local and "adjoint" in local
    assert main(["backends", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (local_info,) = [b for b in data["backends"] if b["name"] == "local"]
    assert local_info["capabilities"]["vjp"] is True
    for missing in data["not_installed"]:
        assert missing["install"].startswith(f"pip install {missing['distribution']}")


def _cirq_reference(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """⟨Z_i⟩ and d(sum ⟨Z_i⟩)/dθ of the demo circuit, with Cirq and finite differences."""
    cirq = pytest.importorskip("cirq")
    n = len(theta)
    q = cirq.LineQubit.range(n)

    def z(th: np.ndarray) -> np.ndarray:
        c = cirq.Circuit(
            [cirq.H(x) for x in q],
            [cirq.CNOT(q[i], q[i + 1]) for i in range(n - 1)],
            [cirq.ry(float(t)).on(x) for t, x in zip(th, q, strict=True)],
        )
        state = cirq.Simulator(dtype=np.complex128).simulate(c, qubit_order=q).final_state_vector
        probs = np.abs(state) ** 2
        bits = (np.arange(2**n)[:, None] >> (n - 1 - np.arange(n))) & 1  # qubit 0 most significant
        return np.asarray(probs @ (1 - 2 * bits))

    eps = 1e-5
    grad = np.array(
        [(z(theta + eps * e).sum() - z(theta - eps * e).sum()) / (2 * eps) for e in np.eye(n)]
    )
    return z(theta), grad


def test_demo_numbers_match_cirq() -> None:
    out = io.StringIO()
    result = run_demo(out=out)
    assert result.circuit.n_qubits == 8 and result.backend == "local"
    z_ref, grad_ref = _cirq_reference(result.theta)
    np.testing.assert_allclose(result.expectations, z_ref, atol=1e-6)
    np.testing.assert_allclose(result.gradient, grad_ref, atol=1e-6)
    text = out.getvalue()
    assert f"<Z_0> = {z_ref[0]:+.6f}" in text
    assert "H on every qubit" in text and "RY(theta_0)" in text


def test_demo_shots_are_seeded_and_consistent() -> None:
    a = run_demo(n_qubits=4, shots=500, seed=3, out=io.StringIO())
    b = run_demo(n_qubits=4, shots=500, seed=3, out=io.StringIO())
    assert a.counts == b.counts and sum(a.counts.values()) == 500
    assert all(len(bits) == 4 for bits in a.counts)
    top = a.top_counts(5)
    assert len(top) == 5 and top[0][1] == max(a.counts.values())
    # Marginal <Z_0> from the counts agrees with the exact value within shot noise.
    z0 = sum((1 - 2 * int(bits[0])) * c for bits, c in a.counts.items()) / 500
    assert abs(z0 - a.expectations[0]) < 5 / np.sqrt(500)


def test_demo_notes_missing_converters(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name in ("cirq", "qiskit") else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    out = io.StringIO()
    result = run_demo(n_qubits=3, out=out)
    assert result.conversions["Cirq"].startswith("not installed")
    assert "pip install 'qstore-core[qiskit]'" in result.conversions["Qiskit"]
    assert "Cirq:   not installed" in out.getvalue()


def test_demo_command_prints_expectations_and_timings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--qubits", "3", "--shots", "100", "--backend", "local_cpu"]) == 0
    out = capsys.readouterr().out
    assert "<Z_2> =" in out and "top 5 bitstrings" in out and "Timings:" in out


def test_python_dash_m_runs_the_command() -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(CORE_SRC), *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.run(
        [sys.executable, "-m", "qstore.core", "--version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"qstore {qc.__version__}")
