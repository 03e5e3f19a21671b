"""qstore-sim-qsim's contenders in ``qstore bench`` (entry-point group ``qstore.bench``): the
peer qsimcirq on its own, forward only (qsim has no gradients).

* ``rw`` and ``circuits``: one ``simulate_expectation_values_sweep`` over the batch's bindings;
* ``circuits:one-at-a-time``: every binding resolved into its own circuit and simulated alone.

The backend ``qsim`` itself (qsimcirq behind Q-Store's backend protocol) is measured by
qstore-core with every other installed backend. qsimcirq is imported when a contender is set up.

>>> from qstore.sim.qsim.bench import contenders
>>> [c.name for c in contenders("circuits:one-at-a-time")]
['qsimcirq, one circuit each']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qstore.core.bench.harness import thread_setting
from qstore.core.bench.plugins import CIRCUITS, CIRCUITS_ONE_AT_A_TIME, RW, Contender
from qstore.core.bench.workload import BATCH, Case, cirq_rw, rw_data

__all__ = ["contenders", "qsim_case"]


def qsim_case(n: int, batch: int = BATCH, one_at_a_time: bool = False) -> Case:
    """qsimcirq on RW with the run's thread setting: one sweep over the batch's bindings, or
    (``one_at_a_time``) one resolved circuit per binding. The resolvers are built inside the
    timed call, as a training step would have to."""
    import cirq
    import qsimcirq

    circuit, qubits, xs, ws = cirq_rw(n)
    sim = qsimcirq.QSimSimulator(qsimcirq.QSimOptions(cpu_threads=thread_setting()))
    observables = [cirq.Z(q) for q in qubits]
    x, w = rw_data(n, batch)
    names = [str(s) for s in xs + ws]
    wflat = [float(v) for v in w.ravel()]

    def resolvers() -> list[Any]:
        return [
            cirq.ParamResolver(dict(zip(names, [*map(float, row), *wflat], strict=True)))
            for row in x
        ]

    if one_at_a_time:

        def forward() -> object:
            return [
                sim.simulate_expectation_values(cirq.resolve_parameters(circuit, r), observables)
                for r in resolvers()
            ]

    else:

        def forward() -> object:
            return sim.simulate_expectation_values_sweep(circuit, observables, resolvers())

    return Case(forward)


def contenders(case: str) -> Sequence[Contender]:
    """What qstore-sim-qsim contributes to ``case`` (see :mod:`qstore.core.bench.plugins`)."""
    if case in (RW, CIRCUITS):
        return [Contender("qsimcirq sweep", "peer", qsim_case)]
    if case == CIRCUITS_ONE_AT_A_TIME:
        return [
            Contender(
                "qsimcirq, one circuit each", "peer", lambda n: qsim_case(n, one_at_a_time=True)
            )
        ]
    return []
