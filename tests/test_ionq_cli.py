"""The IonQ path end to end: the emulator started from the CLI on a free port, the seed's
low-level example (as docs/ionq.md prints it) run against it, and ``qstore backends``."""

from __future__ import annotations

import asyncio
import io
import re
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

pytest.importorskip("qstore.ionq")
pytest.importorskip("uvicorn")

from qstore.core.cli import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "ionq.md"


def low_level_example() -> str:
    """The Python block after the ``low-level-example`` marker of docs/ionq.md."""
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"<!-- low-level-example -->\s*```python\n(.*?)```", text, re.S)
    assert match, "docs/ionq.md lost its low-level example"
    return match.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cli_emulator() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qstore.core",
            "ionq",
            "emulator",
            "--port",
            str(port),
            "--seed",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v0.4"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/backends", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"the emulator did not start: {out}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.slow
def test_seed_low_level_example_runs_against_the_cli_emulator(
    cli_emulator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IONQ_API_URL", cli_emulator)
    monkeypatch.setenv("IONQ_API_KEY", "any-key")
    namespace: dict[str, object] = {"__name__": "ionq_doc_example"}
    exec(compile(low_level_example(), str(DOC), "exec"), namespace)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result, gradient = asyncio.run(namespace["main"]())  # type: ignore[operator]
    assert any("0.0" in str(w.message) for w in caught)  # symbols without values: at 0.0
    assert result.backend == "ionq_hardware" and sum(result.counts.values()) == 1000
    assert result.metadata["cost_usd"] > 1.0  # an Aria job, priced from the table
    # H, CNOT chain and RY(0) leave |+>^8 with <Z_q> = 0: the QPU-like estimate is near 0
    assert abs(float(np.mean(gradient.expectations))) < 0.15
    # d<Z_q>/dtheta_q = -cos(theta_q) = -1 at 0; the loss is their mean
    grads = np.array([gradient.gradients[f"theta_{q}"] for q in range(8)])
    assert np.all(np.abs(grads + 1 / 8) < 0.08), grads
    jobs = httpx.get(f"{cli_emulator}/jobs", headers={"Authorization": "apiKey x"}).json()["jobs"]
    # execute; the loss point; all shifted circuits in one job (each theta_q is the phase of one
    # GPI2, whose exact shift rule takes four evaluations: 8 x 4 = 32 circuits)
    assert sorted(j.get("circuits") for j in jobs) == [1, 1, 32]


@pytest.mark.slow
def test_cli_lists_targets_from_the_running_emulator(
    cli_emulator: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IONQ_API_URL", cli_emulator)
    assert main(["ionq", "backends"]) == 0
    out = capsys.readouterr().out
    assert "qpu.aria-1" in out and "available" in out and "0.00098" in out


def test_qstore_backends_lists_both_ionq_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IONQ_API_KEY", raising=False)
    monkeypatch.delenv("IONQ_API_TOKEN", raising=False)
    buf = io.StringIO()
    monkeypatch.setattr(sys, "stdout", buf)
    assert main(["backends"]) == 0
    out = buf.getvalue()
    rows = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert {"ionq_simulator", "ionq_hardware"} <= rows
    assert "IONQ_API_KEY" in out  # unavailable until a key is set, and it says why


def test_cli_estimate_uses_the_price_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import qstore.core as qc
    from qstore.ionq import PRICES, IonQNativeCompiler

    c = qc.UnifiedCircuit(3).add_gate("H", 0).add_gate("CNOT", [0, 1]).add_gate("CNOT", [1, 2])
    path = tmp_path / "c.json"
    path.write_text(c.to_json(), encoding="utf-8")
    assert (
        main(
            [
                "ionq",
                "estimate",
                "--target",
                "qpu.aria-1",
                "--shots",
                "2000",
                "--circuit",
                str(path),
            ]
        )
        == 0
    )
    native = IonQNativeCompiler().compile_with_frames(c)
    want = PRICES.estimate("qpu.aria-1", 2000, native.n_1q, native.n_2q)
    assert f"${want:.2f}" in capsys.readouterr().out
