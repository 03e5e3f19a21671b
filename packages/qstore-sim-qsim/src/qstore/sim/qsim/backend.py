"""The ``qsim`` backend: Google's qsim state-vector simulator (qsimcirq) for Q-Store.

A circuit template is lowered once to qsim's own gate kinds (:mod:`qstore.sim.qsim.lowering`),
cached on the circuit. A batch of bindings is then one sweep: per binding only the gate
exponents are written into qsim's C++ circuit and simulated; nothing is re-translated through
Cirq (which is where ``QSimSimulator.simulate_expectation_values_sweep`` spends most of its time
on small circuits). ``translation="cirq"`` instead builds a ``cirq.Circuit`` with sympy symbols
once and runs ``simulate_expectation_values_sweep`` on it.

Gradients (``vjp``) are exact parameter-shift rules: every shifted binding of every symbolic gate
parameter, for the whole batch, goes through one sweep; the chain rule through the parameter
expressions gives the gradients with respect to the bindings. qsim computes in single precision
(``complex64``), so results agree with the double-precision ``local`` backend to about 1e-6.

>>> import qstore.core as qc
>>> c = qc.UnifiedCircuit(1).add_gate("RY", 0, "x")
>>> QsimBackend().expectation(c, values=[[0.0], [3.14159265]]).round(5).tolist()
[[1.0], [-1.0]]
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from qstore.core.backends.base import Capabilities, ExecutionResult
from qstore.core.backends.local import split_names
from qstore.core.circuit import UnifiedCircuit
from qstore.core.engine.statevector import memory_limit_bytes
from qstore.core.errors import (
    BackendError,
    BindingError,
    CapabilityError,
    MissingDependencyError,
    ResourceLimitError,
)
from qstore.core.gradients.shift_rules import gate_shift_rule
from qstore.core.observables import PauliSum, as_observables
from qstore.sim.qsim._parameters import FloatArray, ParameterMap
from qstore.sim.qsim.lowering import (
    NativeOp,
    ObservableTerms,
    cirq_circuit,
    cirq_paulisums,
    exponent_matrix,
    lower_circuit,
    qsim_opsums,
    split_observables,
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
class _Template:
    """One circuit template and column layout, lowered once (cached on the circuit)."""

    n_qubits: int
    pmap: ParameterMap
    ops: tuple[NativeOp, ...]
    plans: dict[tuple[NativeOp, ...], list[tuple[Any, ...]]] = field(default_factory=dict)
    circuits: dict[tuple[NativeOp, ...], tuple[Any, tuple[Any, ...]]] = field(default_factory=dict)


class QsimBackend:
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
            gradient_methods=("parameter_shift", "finite_diff", "spsa"),
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

    def _template(
        self,
        circuit: UnifiedCircuit,
        names: Sequence[str] | None,
        shared: Mapping[str, float] | None,
    ) -> _Template:
        if not isinstance(circuit, UnifiedCircuit):
            raise BackendError(
                f"Expected a qstore.core.UnifiedCircuit, got {type(circuit).__name__}; convert "
                "Cirq/Qiskit circuits with UnifiedCircuit.from_cirq / from_qiskit."
            )
        bnames, snames = split_names(circuit, names, shared)
        key = ("qstore.sim.qsim", len(circuit), bnames, snames)
        cache = circuit._program_cache
        tpl = cache.get(key)
        if not isinstance(tpl, _Template):
            pmap = ParameterMap.build(circuit, bnames, snames)
            tpl = _Template(circuit.n_qubits, pmap, lower_circuit(circuit, pmap.slots))
            if len(cache) > 16:
                cache.clear()
            cache[key] = tpl
        return tpl

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

    def _run_expectations(
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

    def _prepare(
        self,
        circuit: UnifiedCircuit,
        values: npt.ArrayLike | None,
        names: Sequence[str] | None,
        shared: Mapping[str, float] | None,
    ) -> tuple[_Template, FloatArray, FloatArray]:
        tpl = self._template(circuit, names, shared)
        full = tpl.pmap.layout(values, shared)
        return tpl, full, tpl.pmap.theta(full)

    # -- execution ----------------------------------------------------------------------------
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
        tpl, _, theta = self._prepare(circuit, values, names, shared)
        obs = as_observables(observables, circuit.n_qubits)
        terms = split_observables(obs, circuit.n_qubits)
        if shots is None:
            return self._run_expectations(tpl, terms, theta)
        _check_shots(shots)
        return self._estimate(tpl, obs, theta, shots, self._generator(seed))

    def vjp(
        self,
        circuit: UnifiedCircuit,
        observables: Any,
        values: npt.ArrayLike | None,
        cotangent: npt.ArrayLike,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
    ) -> tuple[FloatArray, FloatArray]:
        """Parameter-shift gradient of ``sum(cotangent * expectation)``.

        Returns ``(d/dvalues [batch, P], d/dshared [len(shared)])``.
        """
        _, gv, gs = self.value_and_vjp(
            circuit, observables, values, cotangent, names=names, shared=shared
        )
        return gv, gs

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
        """Expectations and the VJP from one sweep over the plain and all shifted bindings."""
        tpl, full, theta = self._prepare(circuit, values, names, shared)
        terms = split_observables(as_observables(observables, circuit.n_qubits), circuit.n_qubits)
        bsz, n_obs = theta.shape[0], terms.n_obs
        cot = np.asarray(cotangent, dtype=np.float64)
        if cot.ndim == 1 and bsz == 1:
            cot = cot[None]
        if cot.shape != (bsz, n_obs):
            raise BindingError(
                f"cotangent must have shape [batch, n_observables] = {[bsz, n_obs]}, got "
                f"{list(cot.shape)}."
            )
        pmap = tpl.pmap
        param: list[int] = []
        amount: list[float] = []
        weight: list[float] = []
        for g in np.flatnonzero(pmap.symbolic).tolist():
            rule = gate_shift_rule(*pmap.gates[g])
            for s, c in zip(rule.shifts, rule.coefficients, strict=True):
                param += [g, g]
                amount += [s, -s]
                weight += [c, -c]
        t = len(param)
        rows = np.broadcast_to(theta, (t + 1, *theta.shape)).copy()  # [1 + T, B, G]
        rows[np.arange(1, t + 1), :, param] += np.asarray(amount)[:, None]
        e = self._run_expectations(tpl, terms, rows.reshape(-1, theta.shape[1]))
        e = e.reshape(t + 1, bsz, n_obs)
        logger.debug("qsim parameter shift: %d rows in one sweep", (t + 1) * bsz)
        # d(sum cot * E)/d theta_g = sum over g's shifts of weight * <cot, E(shifted)>
        contrib = np.einsum("tbo,bo->tb", e[1:], cot) * np.asarray(weight)[:, None]
        gtheta = np.zeros((bsz, pmap.n_theta))
        np.add.at(gtheta.T, np.asarray(param, dtype=np.intp), contrib)
        gv = pmap.chain_rule(full, gtheta)
        nb = pmap.n_batched
        return e[0], gv[:, :nb], gv[:, nb:].sum(axis=0)

    def state(
        self,
        circuit: UnifiedCircuit,
        values: npt.ArrayLike | None = None,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
    ) -> npt.NDArray[np.complex64]:
        """Final state vectors ``[batch, 2**n]`` (complex64, qubit 0 most significant)."""
        tpl, _, theta = self._prepare(circuit, values, names, shared)
        states: npt.NDArray[np.complex64] = self._run_states(tpl, tpl.ops, theta)
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
        return _probabilities(self.state(circuit, values, names=names, shared=shared))

    def sample(
        self,
        circuit: UnifiedCircuit,
        shots: int,
        values: npt.ArrayLike | None = None,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
        seed: int | None = None,
    ) -> npt.NDArray[np.int64]:
        """Measured basis indices ``[batch, shots]`` (qubit 0 most significant), seeded."""
        _check_shots(shots)
        probs = self.probabilities(circuit, values, names=names, shared=shared)
        return _sample_indices(probs, shots, self._generator(seed))

    def counts(
        self,
        circuit: UnifiedCircuit,
        shots: int,
        values: npt.ArrayLike | None = None,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
        seed: int | None = None,
    ) -> list[dict[str, int]]:
        """Counts per bitstring (qubit 0 first) for every row of the batch."""
        idx = self.sample(circuit, shots, values, names=names, shared=shared, seed=seed)
        return [_counts(row, circuit.n_qubits) for row in idx]

    async def execute(
        self, circuit: UnifiedCircuit, shots: int | None = 1000, timeout: float | None = None
    ) -> ExecutionResult:
        """Run one bound circuit: counts with ``shots``, exact probabilities with ``None``."""
        if circuit.is_parameterized:
            raise BindingError(
                f"execute() needs a bound circuit; symbols {circuit.parameter_names} are unbound. "
                "Use circuit.bind({...}) first."
            )
        if shots is not None:
            _check_shots(shots)

        def work() -> ExecutionResult:
            n = circuit.n_qubits
            probs = self.probabilities(circuit)[0]
            z = probs @ _z_signs(n)
            if shots is None:
                nz = np.flatnonzero(probs > 1e-12)
                pmap = {format(int(i), f"0{n}b"): float(probs[i]) for i in nz}
                return ExecutionResult(self.name, n, None, probabilities=pmap, expectations=z)
            idx = _sample_indices(probs[None], shots, self._generator(None))[0]
            return ExecutionResult(self.name, n, shots, counts=_counts(idx, n), expectations=z)

        try:
            return await asyncio.wait_for(asyncio.to_thread(work), timeout)
        except (TimeoutError, asyncio.TimeoutError) as exc:  # distinct classes on Python 3.10
            raise BackendError(f"qsim execution exceeded the timeout of {timeout} s.") from exc

    # -- shots --------------------------------------------------------------------------------
    def _estimate(
        self,
        tpl: _Template,
        obs: list[PauliSum],
        theta: FloatArray,
        shots: int,
        rng: np.random.Generator,
    ) -> FloatArray:
        """Shot estimates: each Pauli term is measured in its own basis (rotations on qsim)."""
        n = tpl.n_qubits
        out = np.zeros((theta.shape[0], len(obs)))
        samples: dict[tuple[tuple[int, str], ...], npt.NDArray[np.int64]] = {}
        for o, ps in enumerate(obs):
            for term in ps.terms:
                coeff = complex(term.coeff).real
                if not term.paulis:
                    out[:, o] += coeff
                    continue
                basis = tuple((q, p) for q, p in term.paulis if p in "XY")
                if basis not in samples:
                    rotations = tuple(
                        NativeOp(r.kind, (q,), offset=r.offset)
                        for q, p in basis
                        for r in _MEASURE_BASIS[p]
                    )
                    states = self._run_states(tpl, tpl.ops + rotations, theta)
                    samples[basis] = _sample_indices(_probabilities(states), shots, rng)
                idx = samples[basis]
                parity = np.zeros(idx.shape, dtype=np.int64)
                for q in term.qubits:
                    parity ^= (idx >> (n - 1 - q)) & 1
                out[:, o] += coeff * (1 - 2 * parity).mean(axis=1)
        return out

    def _generator(self, seed: int | None) -> np.random.Generator:
        return self._rng if seed is None else np.random.default_rng(seed)


def _check_shots(shots: Any) -> None:
    if isinstance(shots, bool) or not isinstance(shots, (int, np.integer)) or shots < 1:
        raise CapabilityError(f"shots must be a positive int (or None for exact), got {shots!r}.")


def _probabilities(states: Any) -> FloatArray:
    probs = np.abs(np.asarray(states, dtype=np.complex128)) ** 2
    return np.asarray(probs / probs.sum(axis=1, keepdims=True), dtype=np.float64)


def _z_signs(n: int) -> FloatArray:
    """``[2**n, n]``: ``+1`` where qubit ``q`` is 0 in the basis state, ``-1`` where it is 1."""
    x = np.arange(1 << n)[:, None]
    bits = (x >> (n - 1 - np.arange(n))[None, :]) & 1
    return np.asarray(1 - 2 * bits, dtype=np.float64)


def _counts(idx: npt.NDArray[np.int64], n: int) -> dict[str, int]:
    uniq, cnt = np.unique(idx, return_counts=True)
    return {format(int(u), f"0{n}b"): int(c) for u, c in zip(uniq, cnt, strict=True)}


def _sample_indices(
    probs: FloatArray, shots: int, rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """``shots`` basis indices per row, by inverse-CDF sampling vectorised over the batch."""
    bsz, dim = probs.shape
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    u = rng.random((bsz, shots))
    offs = np.arange(bsz)[:, None]
    flat = np.searchsorted((cdf + offs).ravel(), (u + offs).ravel(), side="right")
    idx: npt.NDArray[np.int64] = np.minimum(flat.reshape(bsz, shots) - offs * dim, dim - 1)
    return idx.astype(np.int64)
