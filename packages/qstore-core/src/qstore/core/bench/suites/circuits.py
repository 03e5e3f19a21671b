"""Suite ``circuits``: distinct bound circuits of 8 qubits and depth 4 evaluated per second.

This is the seed's metric (v3.5: 0.57 circuits/s; its target 3-5). The circuit is RW at n = 8
(``QuantumLayer(8, depth=4)``), and every circuit has its own features, so 32 bindings are 32
distinct circuits. Two modes:

* ``batch``: one template with 32 bindings per call, the way the framework layers run it;
* ``one at a time``: each binding becomes its own bound circuit object, compiled and simulated
  alone (what a user looping over circuits gets; it includes compilation).

Figures are exact ⟨Z_i⟩ for all 8 qubits, forward only.
"""

from __future__ import annotations

from collections.abc import Callable

from qstore.core.bench import workload as wl
from qstore.core.bench.harness import Run
from qstore.core.bench.runner import Log, Options
from qstore.core.bench.suites.rw import Contender, measure_contenders, plugin_backends

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


def _forward_only(setup: Callable[[int], wl.Case]) -> Callable[[int], wl.Case]:
    return lambda n: wl.Case(setup(n).forward)


def _label(mode: str) -> Callable[[int], str]:
    return lambda n: mode


def contenders(single: bool) -> list[Contender]:
    if single:
        return [
            Contender("qstore local complex128", "qstore", _local_single("complex128")),
            Contender("qstore local complex64", "qstore", _local_single("complex64")),
            Contender(
                "qsimcirq, one circuit each", "peer", lambda n: wl.qsim_case(n, one_at_a_time=True)
            ),
        ]
    return [
        Contender("qstore local complex128", "qstore", _local_batch("complex128")),
        Contender("qstore local complex64", "qstore", _local_batch("complex64")),
        *(Contender(c.name, c.kind, _forward_only(c.setup)) for c in plugin_backends()),
        Contender("qstore.torch QuantumLayer", "qstore", _forward_only(wl.torch_layer_case)),
        Contender(
            "qstore.tf QuantumLayer (tf.function)", "qstore", _forward_only(wl.tf_layer_case)
        ),
        Contender(
            "pennylane lightning.qubit",
            "peer",
            _forward_only(lambda n: wl.pennylane_lightning_case(n, device_vjp=False)),
        ),
        Contender("qsimcirq sweep", "peer", wl.qsim_case),
        Contender("tfq Expectation", "peer", _forward_only(wl.tfq_case)),
    ]


def run(options: Options, run: Run, log: Log) -> None:
    """Measure circuits/s in both modes for every selected contender."""
    run.options["circuits"] = {"qubits": N_QUBITS, "depth": wl.LAYERS, "per_call": wl.BATCH}
    for single in (False, True):
        mode = SINGLE if single else BATCH
        measure_contenders(
            "circuits",
            (N_QUBITS,),
            contenders(single),
            options,
            run,
            log,
            metrics=(("circuits/s", "forward"),),
            unit="circuits/s",
            group=_label(mode),
        )
