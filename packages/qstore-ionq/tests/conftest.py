"""Fixtures: an in-process emulator (httpx's ASGI transport) and clients/backends bound to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from qstore.ionq import IonQBackend, IonQClient, RetryPolicy
from qstore.ionq.testing import IonQEmulator

KEY = "sk-test-3b7f0c9e51d24a86"
BASE = "http://emulator.test/v0.4"
FAST = RetryPolicy(max_attempts=12, backoff_base=0.002, backoff_max=0.02)


@pytest.fixture
def emulator() -> IonQEmulator:
    return IonQEmulator(seed=7)


@pytest.fixture
def make_client(emulator: IonQEmulator) -> Callable[..., IonQClient]:
    def make(**options: Any) -> IonQClient:
        options.setdefault("api_key", KEY)
        options.setdefault("retry", FAST)
        options.setdefault("poll_interval", 0.005)
        options.setdefault("max_poll_interval", 0.02)
        return IonQClient(base_url=BASE, transport=httpx.ASGITransport(emulator.app), **options)

    return make


@pytest.fixture
def make_backend(emulator: IonQEmulator) -> Iterator[Callable[..., IonQBackend]]:
    made: list[IonQBackend] = []

    def make(**options: Any) -> IonQBackend:
        options.setdefault("api_key", KEY)
        options.setdefault("retry", FAST)
        options.setdefault("poll_interval", 0.005)
        backend = IonQBackend(base_url=BASE, transport=httpx.ASGITransport(emulator.app), **options)
        made.append(backend)
        return backend

    yield make
    for b in made:
        b.close()


def _bell_job(**extra: Any) -> dict[str, Any]:
    body = {
        "type": "ionq.circuit.v1",
        "backend": "simulator",
        "shots": 100,
        "input": {
            "gateset": "qis",
            "qubits": 2,
            "circuit": [{"gate": "h", "target": 0}, {"gate": "cnot", "control": 0, "target": 1}],
        },
    }
    body.update(extra)
    return body


@pytest.fixture
def bell_job() -> Callable[..., dict[str, Any]]:
    """Makes a two-qubit Bell-state job body in QIS gates (keyword arguments update it)."""
    return _bell_job
