"""Suite ``circuits``: distinct bound circuits of 8 qubits and depth 4 evaluated per second.

This is the seed's metric (v3.5: 0.57 circuits/s; its target 3-5). The circuit is RW at n = 8
(``QuantumLayer(8, depth=4)``), and every circuit has its own features, so 32 bindings are 32
distinct circuits. Two modes:

* ``batch``: one template with 32 bindings per call, the way the framework layers run it;
* ``one at a time``: each binding becomes its own bound circuit object, compiled and simulated
  alone (what a user looping over circuits gets; it includes compilation).

Figures are exact ⟨Z_i⟩ for all 8 qubits, forward only. Besides qstore-core's own, the
contenders are the installed backends and what the installed distributions add to the cases
``"circuits"`` and ``"circuits:one-at-a-time"`` (:mod:`qstore.core.bench.plugins`).
"""

from __future__ import annotations

from collections.abc import Callable

from qstore.core.bench import workload as wl
from qstore.core.bench.harness import Run
from qstore.core.bench.plugins import (
    CIRCUITS,
    CIRCUITS_ONE_AT_A_TIME,
    Contender,
    plugin_contenders,
)
from qstore.core.bench.runner import Log, Options
from qstore.core.bench.suites.rw import by_kind, measure_contenders, plugin_backends

N_QUBITS = 8
BATCH = "batch of 32 bindings"
SINGLE = "one at a time"


def _local_batch(dtype: str) -> Callable[[int], wl.Case]:
    def setup(n: int) -> wl.Case:
        from qstore.core.backends.local import LocalBackend

        return wl.Case(wl.backend_case(n, LocalBackend(dtype=dtype)).forward)

    return setup


def _local_single(dtype: str) -> Callable[[int], wl.Case]:
    def setup(n: int) -> wl.Case:
        from qstore.core.backends.local import LocalBackend

        backend = LocalBackend(dtype=dtype)
        circuit, inputs, weights = wl.rw_circuit(n)
        x, w = wl.rw_data(n)
        shared = dict(zip(weights, (float(v) for v in w.ravel()), strict=True))
        bindings = [
            {**shared, **dict(zip(inputs, (float(v) for v in row), strict=True))} for row in x
        ]

        def forward() -> object:
            return [backend.expectation(circuit.bind(b)) for b in bindings]

        return wl.Case(forward)

    return setup


def _label(mode: str) -> Callable[[int], str]:
    return lambda n: mode


def contenders(single: bool, options: Options, run: Run, log: Log) -> list[Contender]:
    """qstore-core's contenders of one mode, then the installed distributions' (only the
    forward call of each is timed)."""
    if single:
        return by_kind(
            [
                Contender("qstore local complex128", "qstore", _local_single("complex128")),
                Contender("qstore local complex64", "qstore", _local_single("complex64")),
                *plugin_contenders(CIRCUITS_ONE_AT_A_TIME, Contender, options, run, log),
            ]
        )
    return by_kind(
        [
            Contender("qstore local complex128", "qstore", _local_batch("complex128")),
            Contender("qstore local complex64", "qstore", _local_batch("complex64")),
            *plugin_backends(),
            *plugin_contenders(CIRCUITS, Contender, options, run, log),
        ]
    )


def run(options: Options, run: Run, log: Log) -> None:
    """Measure circuits/s in both modes for every selected contender."""
    run.options["circuits"] = {"qubits": N_QUBITS, "depth": wl.LAYERS, "per_call": wl.BATCH}
    for single in (False, True):
        mode = SINGLE if single else BATCH
        measure_contenders(
            "circuits",
            (N_QUBITS,),
            contenders(single, options, run, log),
            options,
            run,
            log,
            metrics=(("circuits/s", "forward"),),
            unit="circuits/s",
            group=_label(mode),
        )
