"""The ``qsim`` backend: Google's qsim state-vector simulator (qsimcirq) for Q-Store.

A circuit template is lowered once to qsim's own gate kinds (:mod:`qstore.sim.qsim.lowering`),
cached on the circuit. A batch of bindings is then one sweep: per binding only the gate
exponents are written into qsim's C++ circuit and simulated; nothing is re-translated through
Cirq (which is where ``QSimSimulator.simulate_expectation_values_sweep`` spends most of its time
on small circuits). ``translation="cirq"`` instead builds a ``cirq.Circuit`` with sympy symbols
once and runs ``simulate_expectation_values_sweep`` on it.

Gradients (``vjp``) are adjoint: qsim simulates the batch's final states once, and the core
engine's adjoint pass un-computes the circuit from them on NumPy
(:func:`qstore.core.backends.plugin.value_and_vjp_fn_from_states`), so a training step costs one
qsim forward pass and one backward sweep, not a parameter-shift sweep of ``2 x parameters``
circuits per sample. Layers keep the forward pass for their backward (``value_and_vjp_fn``).
qsim computes in single precision (``complex64``), so results agree with the double-precision
``local`` backend to about 1e-6.

The backend is built on the public plugin kit (:mod:`qstore.core.backends.plugin`): it is a
``SimulatorCore`` (``template``, ``run_expectations``, ``basis_states``) and every method of the
backend protocol is one call of the kit's functions.

>>> import qstore.core as qc
>>> c = qc.UnifiedCircuit(1).add_gate("RY", 0, "x")
>>> QsimBackend().expectation(c, values=[[0.0], [3.14159265]]).round(5).tolist()
[[1.0], [-1.0]]
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from qstore.core.backends import plugin
from qstore.core.backends.base import Capabilities, FusedVJP
from qstore.core.backends.plugin import Basis, FloatArray, ObservableTerms, Template, VJPFn
from qstore.core.backends.sampling import ProbabilitySampling
from qstore.core.circuit import UnifiedCircuit
from qstore.core.engine.memory import memory_limit_bytes
from qstore.core.errors import (
    BackendError,
    BindingError,
    CapabilityError,
    MissingDependencyError,
    ResourceLimitError,
)
from qstore.sim.qsim.lowering import (
    NativeOp,
    cirq_circuit,
    cirq_paulisums,
    exponent_matrix,
    lower_circuit,
    qsim_opsums,
)

logger = logging.getLogger(__name__)

_NATIVE_API = (
    "Circuit",
    "add_gate",
    "control_last_gate",
    "OpString",
    "add_gate_to_opstring",
    "qsim_simulate_expectation_values",
    "qsim_simulate_fullstate",
)
_RESERVED_OPTIONS = frozenset({"c", "i", "s"})
_STATE_BYTES = 8  # complex64
_MEASURE_BASIS = {
    "X": (NativeOp("kH", ()),),
    "Y": (NativeOp("kZPowGate", (), offset=-0.5), NativeOp("kH", ())),  # S^dag, then H
}


def _qsimcirq() -> Any:
    try:
        import qsimcirq
    except ImportError as exc:
        raise MissingDependencyError(
            "The qsim backend needs the 'qsimcirq' package, which is not installed. Install it "
            "with: pip install qstore-sim-qsim (or pip install qsimcirq)."
        ) from exc
    return qsimcirq


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


@dataclass
class _Template(Template[NativeOp]):
    """A lowered template with its qsim gate plans and Cirq circuits, per op list."""

    plans: dict[tuple[NativeOp, ...], list[tuple[Any, ...]]] = field(default_factory=dict)
    circuits: dict[tuple[NativeOp, ...], tuple[Any, tuple[Any, ...]]] = field(default_factory=dict)


class QsimBackend(ProbabilitySampling, FusedVJP):
    """Batched simulation on qsim (``qsimcirq``), exact in single precision, seeded shots.

    Args:
        threads: CPU threads qsim uses (default: the cores this process may run on).
        max_fused_gate_size: largest gate qsim's fuser builds, 1..6 (default: 2 below 22 qubits,
            3 from 22 on, as qsim recommends).
        use_gpu: simulate on the GPU (needs a CUDA build of qsimcirq).
        gpu_mode: 0 for qsim's CUDA kernels, 1 for NVIDIA cuStateVec.
        translation: ``"native"`` (default; bind numbers straight into qsim's circuit) or
            ``"cirq"`` (a sympy-symbol ``cirq.Circuit`` and qsimcirq's own sweep).
        seed: default seed for shot sampling (a per-call ``seed=`` overrides it).
        qsim_options: further qsimcirq options in its dict form (e.g. ``{"v": 1}``).
    """

    name = "qsim"
    _probability_cutoff: ClassVar[float] = 1e-12

    def __init__(
        self,
        threads: int | None = None,
        max_fused_gate_size: int | None = None,
        use_gpu: bool = False,
        gpu_mode: int = 0,
        translation: str = "native",
        seed: int | None = None,
        qsim_options: Mapping[str, Any] | None = None,
    ) -> None:
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
        ):
            raise BackendError(f"threads must be a positive int or None, got {threads!r}.")
        if max_fused_gate_size is not None and (
            isinstance(max_fused_gate_size, bool)
            or not isinstance(max_fused_gate_size, int)
            or not 1 <= max_fused_gate_size <= 6
        ):
            raise BackendError(
                f"max_fused_gate_size must be an int from 1 to 6 or None, got "
                f"{max_fused_gate_size!r}."
            )
        if gpu_mode not in (0, 1):
            raise BackendError(f"gpu_mode must be 0 (CUDA) or 1 (cuStateVec), got {gpu_mode!r}.")
        if translation not in ("native", "cirq"):
            raise BackendError(f"translation must be 'native' or 'cirq', got {translation!r}.")
        extra = dict(qsim_options or {})
        reserved = sorted(_RESERVED_OPTIONS.intersection(extra))
        if reserved:
            raise BackendError(
                f"qsim_options keys {reserved} are reserved for the circuit, initial state and "
                "seed, which the backend sets itself."
            )
        self.threads = threads
        self.max_fused_gate_size = max_fused_gate_size
        self.use_gpu = bool(use_gpu)
        self.gpu_mode = gpu_mode
        self.translation = translation
        self.seed = seed
        self.qsim_options = extra
        self._rng = np.random.default_rng(seed)
        self._module: Any = None
        self._simulator: Any = None

    def __repr__(self) -> str:
        gpu = ", use_gpu=True" if self.use_gpu else ""
        return f"QsimBackend(translation={self.translation!r}{gpu})"

    # -- capabilities -------------------------------------------------------------------------
    def _unavailable_reason(self) -> str:
        if importlib.util.find_spec("qsimcirq") is None:
            return "the 'qsimcirq' package is not installed (pip install qsimcirq)"
        if self.use_gpu:
            qsimcirq = _qsimcirq()
            found = qsimcirq.qsim_custatevec if self.gpu_mode else qsimcirq.qsim_gpu
            if found is None:
                what = "cuStateVec" if self.gpu_mode else "CUDA"
                return (
                    f"use_gpu=True, but the installed qsimcirq has no {what} support (no GPU, "
                    "or a CPU-only build); build qsimcirq with CUDA or use use_gpu=False"
                )
        return ""

    @property
    def capabilities(self) -> Capabilities:
        reason = self._unavailable_reason()
        # qsim keeps the state and one scratch copy for expectation values (complex64).
        max_q = math.floor(math.log2(max(memory_limit_bytes() / (3 * _STATE_BYTES), 2)))
        return Capabilities(
            name=self.name,
            max_qubits=max_q,
            exact=True,
            shots=True,
            # vjp: the core engine's adjoint pass from qsim's final states
            gradient_methods=("adjoint", "parameter_shift", "finite_diff", "spsa"),
            vjp=True,
            gpu=self.use_gpu,
            available=not reason,
            reason=reason,
            dtypes=("complex64",),
            extra={
                "engine": "qsimcirq",
                "translation": self.translation,
                "threads": self.threads or _usable_cores(),
                "max_fused_gate_size": self.max_fused_gate_size or "auto",
                "gradient": "adjoint: qstore.core's backward pass from qsim's final states",
            },
        )

    # -- qsim plumbing ------------------------------------------------------------------------
    def _qsim(self) -> Any:
        """The qsim extension module for this configuration (CPU, CUDA or cuStateVec)."""
        if self._module is None:
            reason = self._unavailable_reason()
            if reason:
                raise CapabilityError(f"The qsim backend cannot run here: {reason}.")
            qsimcirq = _qsimcirq()
            if not self.use_gpu:
                module = qsimcirq.qsim
            else:
                module = qsimcirq.qsim_custatevec if self.gpu_mode else qsimcirq.qsim_gpu
            if self.translation == "native" and not all(hasattr(module, a) for a in _NATIVE_API):
                logger.warning(
                    "qsimcirq %s lacks part of the low-level API %s; using translation='cirq'.",
                    getattr(qsimcirq, "__version__", "?"),
                    ", ".join(_NATIVE_API),
                )
                self.translation = "cirq"
            self._module = module
        return self._module

    def _options(self, n_qubits: int) -> dict[str, Any]:
        fuse = self.max_fused_gate_size or (2 if n_qubits < 22 else 3)
        opts: dict[str, Any] = {
            "f": fuse,
            "t": self.threads or _usable_cores(),
            "r": 1,
            "g": self.use_gpu,
            "gmode": self.gpu_mode,
            "gsst": 512,
            "gdb": 16,
            "v": 0,
            "z": False,
        }
        opts.update(self.qsim_options)
        return opts

    def _cirq_simulator(self, n_qubits: int) -> Any:
        qsimcirq = _qsimcirq()
        opts = self._options(n_qubits)
        if self._simulator is None or self._simulator[0] != opts:
            self._simulator = (opts, qsimcirq.QSimSimulator(qsim_options=dict(opts)))
        return self._simulator[1]

    # -- the simulator (plugin.SimulatorCore) --------------------------------------------------
    def template(
        self,
        circuit: UnifiedCircuit,
        names: Sequence[str] | None,
        shared: Mapping[str, float] | None,
    ) -> _Template:
        """``circuit`` lowered to qsim's gate kinds for this column layout (cached on it)."""
        return plugin.cached_template(
            _Template, "qstore.sim.qsim", circuit, names, shared, lower_circuit
        )

    def _check_memory(self, n_qubits: int, kept_states: int) -> None:
        """Refuse work that would not fit: qsim's own state plus ``kept_states`` returned ones."""
        need = (3 + kept_states) * (1 << n_qubits) * _STATE_BYTES if n_qubits < 62 else math.inf
        limit = memory_limit_bytes()
        if need > limit:
            raise ResourceLimitError(
                f"Simulating {n_qubits} qubits on qsim (keeping {kept_states} state(s)) needs "
                f"about {need / 2**30:.1f} GiB, more than the {limit / 2**30:.1f} GiB allowed. "
                "Use fewer qubits, a smaller batch, or raise QSTORE_MAX_MEMORY_GB."
            )

    def _plan(self, tpl: _Template, ops: tuple[NativeOp, ...]) -> list[tuple[Any, ...]]:
        """Per op: (qsim kind, qsim qubits, fixed params or None, global shift, controls)."""
        plan = tpl.plans.get(ops)
        if plan is None:
            module = self._qsim()
            n = tpl.n_qubits
            plan = []
            for op in ops:
                fixed = None
                if op.col < 0:
                    fixed = (
                        {"exponent": op.offset, "global_shift": op.global_shift}
                        if op.is_pow
                        else {}
                    )
                plan.append(
                    (
                        getattr(module, op.kind),
                        [n - 1 - q for q in op.qubits],
                        fixed,
                        op.global_shift,
                        [n - 1 - q for q in op.controls],
                    )
                )
            tpl.plans[ops] = plan
        return plan

    def _native_circuits(self, tpl: _Template, ops: tuple[NativeOp, ...], theta: FloatArray) -> Any:
        """Yield one qsim circuit per row of ``theta``, binding only numbers."""
        module = self._qsim()
        plan = self._plan(tpl, ops)
        n = tpl.n_qubits
        add_gate = module.add_gate
        control = module.control_last_gate
        for row in exponent_matrix(ops, theta).tolist():
            c = module.Circuit()
            c.num_qubits = n
            j = 0
            for time, (kind, qubits, fixed, shift, ctrls) in enumerate(plan):
                if fixed is None:
                    add_gate(kind, time, qubits, {"exponent": row[j], "global_shift": shift}, c)
                    j += 1
                else:
                    add_gate(kind, time, qubits, fixed, c)
                if ctrls:
                    control(ctrls, [1] * len(ctrls), c)
            yield c

    def _cirq_sweep(
        self, tpl: _Template, ops: tuple[NativeOp, ...], theta: FloatArray
    ) -> tuple[Any, list[Any], list[Any]]:
        import cirq

        qubits = cirq.LineQubit.range(tpl.n_qubits)
        built = tpl.circuits.get(ops)
        if built is None:
            built = cirq_circuit(ops, qubits)
            tpl.circuits[ops] = built
        circuit, symbols = built
        resolvers = [
            cirq.ParamResolver(dict(zip(symbols, row, strict=True)))
            for row in exponent_matrix(ops, theta).tolist()
        ]
        return circuit, resolvers, qubits

    def run_expectations(
        self, tpl: _Template, terms: ObservableTerms, theta: FloatArray
    ) -> FloatArray:
        """Exact expectations ``[R, n_obs]`` for every row of ``theta`` (one sweep)."""
        self._check_memory(tpl.n_qubits, 0)
        rows = theta.shape[0]
        out = np.tile(terms.constants, (rows, 1))
        active = list(terms.active)
        if not active:
            return out
        module = self._qsim()
        n = tpl.n_qubits
        if self.translation == "native":
            opsums = qsim_opsums(module, terms, n)
            opts = self._options(n)
            opts["s"] = 0
            evs = []
            for c in self._native_circuits(tpl, tpl.ops, theta):
                opts["c"] = c
                evs.append(module.qsim_simulate_expectation_values(opts, opsums, 0))
            vals = np.asarray(evs).real
        else:
            circuit, resolvers, qubits = self._cirq_sweep(tpl, tpl.ops, theta)
            psums = cirq_paulisums(terms, qubits)
            res = self._cirq_simulator(n).simulate_expectation_values_sweep(
                circuit, psums, resolvers, qubit_order=qubits
            )
            vals = np.asarray(res).real
        out[:, active] += vals.reshape(rows, len(active))
        return out

    def _run_states(self, tpl: _Template, ops: tuple[NativeOp, ...], theta: FloatArray) -> Any:
        """Final states ``[R, 2**n]`` (complex64, qubit 0 most significant)."""
        rows = theta.shape[0]
        n = tpl.n_qubits
        self._check_memory(n, rows)
        module = self._qsim()
        out = np.empty((rows, 1 << n), dtype=np.complex64)
        if self.translation == "native":
            opts = self._options(n)
            opts["s"] = 0
            for r, c in enumerate(self._native_circuits(tpl, ops, theta)):
                opts["c"] = c
                out[r] = module.qsim_simulate_fullstate(opts, 0).view(np.complex64)
        else:
            circuit, resolvers, qubits = self._cirq_sweep(tpl, ops, theta)
            results = self._cirq_simulator(n).simulate_sweep(circuit, resolvers, qubit_order=qubits)
            for r, res in enumerate(results):
                out[r] = res.final_state_vector
        return out

    def basis_states(self, tpl: _Template, theta: FloatArray, basis: Basis) -> Any:
        """Final states ``[R, 2**n]`` (complex64) with the qubits of ``basis`` rotated to Z on
        qsim (for shot estimates); ``basis=()``: the plain final states."""
        rotations = tuple(
            NativeOp(r.kind, (q,), offset=r.offset) for q, p in basis for r in _MEASURE_BASIS[p]
        )
        return self._run_states(tpl, tpl.ops + rotations, theta)

    # -- the backend protocol -----------------------------------------------------------------
    def expectation(
        self,
        circuit: UnifiedCircuit,
        observables: Any = None,
        values: npt.ArrayLike | None = None,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
        shots: int | None = None,
        seed: int | None = None,
    ) -> FloatArray:
        """Expectations ``[batch, n_observables]`` (``None`` observables: ``Z`` per qubit)."""
        return plugin.expectation(
            self,
            circuit,
            observables,
            values,
            names=names,
            shared=shared,
            shots=shots,
            rng=self._generator(seed),
        )

    def value_and_vjp_fn(
        self,
        circuit: UnifiedCircuit,
        observables: Any,
        values: npt.ArrayLike | None,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
    ) -> tuple[FloatArray, VJPFn]:
        """Expectations from one qsim pass, and the adjoint VJP from its final states
        (:class:`qstore.core.adapter.KeepsForward`)."""
        return plugin.value_and_vjp_fn_from_states(
            self, circuit, observables, values, names=names, shared=shared
        )

    def value_and_vjp(
        self,
        circuit: UnifiedCircuit,
        observables: Any,
        values: npt.ArrayLike | None,
        cotangent: npt.ArrayLike,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Expectations and the adjoint VJP: one qsim pass, one backward sweep."""
        forward = self.value_and_vjp_fn(circuit, observables, values, names=names, shared=shared)
        return plugin.vjp_at_once(forward, cotangent)

    def unitary(
        self,
        circuit: UnifiedCircuit,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
    ) -> npt.NDArray[np.complex64]:
        """The circuit's unitary ``[2**n, 2**n]`` for one binding of its symbols (``shared``):
        column ``j`` is ``U |j>`` (qubit 0 most significant). One qsim circuit, simulated from
        every basis state in turn (qsim starts from a basis index), instead of one circuit per
        basis state: what a layer fed quantum states needs each step
        (:class:`qstore.core.adapter.UnitaryAdapter`).
        """
        batch = plugin.bind_batch(self, circuit, None, names=names, shared=shared)
        tpl, theta = batch.template, batch.theta
        if theta.shape[0] != 1:
            raise BindingError(
                f"unitary() takes one binding of the circuit's symbols, got {theta.shape[0]} rows."
            )
        n = tpl.n_qubits
        dim = 1 << n
        self._check_memory(n, dim)
        out = np.empty((dim, dim), dtype=np.complex64)
        module = self._qsim()
        if self.translation == "native":
            opts = self._options(n)
            opts["s"] = 0
            opts["c"] = next(iter(self._native_circuits(tpl, tpl.ops, theta)))
            for j in range(dim):
                out[:, j] = module.qsim_simulate_fullstate(opts, j).view(np.complex64)
        else:
            circuit_, resolvers, qubits = self._cirq_sweep(tpl, tpl.ops, theta)
            sim = self._cirq_simulator(n)
            for j in range(dim):
                res = sim.simulate(circuit_, resolvers[0], qubit_order=qubits, initial_state=j)
                out[:, j] = res.final_state_vector
        return out

    def state(
        self,
        circuit: UnifiedCircuit,
        values: npt.ArrayLike | None = None,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
    ) -> npt.NDArray[np.complex64]:
        """Final state vectors ``[batch, 2**n]`` (complex64, qubit 0 most significant)."""
        states: npt.NDArray[np.complex64] = plugin.final_states(
            self, circuit, values, names=names, shared=shared
        )
        return states

    def probabilities(
        self,
        circuit: UnifiedCircuit,
        values: npt.ArrayLike | None = None,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
    ) -> FloatArray:
        """Basis-state probabilities ``[batch, 2**n]`` (rows renormalised to sum to 1)."""
        return plugin.probabilities(self, circuit, values, names=names, shared=shared)
