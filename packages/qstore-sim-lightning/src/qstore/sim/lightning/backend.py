"""The ``lightning``, ``lightning.gpu`` and ``lightning.kokkos`` backends: PennyLane Lightning.

A circuit template is lowered once to Lightning's native gates (:mod:`.lowering`) and its
observables to PennyLane measurements, both cached on the circuit. A batch becomes one tape per
binding (gates without bound parameters are shared between tapes), executed by the device in one
``execute`` call; the device's transform pipeline is skipped because every operation is native
to it (checked once per device). Gradients use Lightning's adjoint method: by default one
``execute_and_compute_vjp`` call (the cotangent-weighted observable is differentiated in one
backward pass per tape); ``device_vjp=False`` computes full Jacobians instead. Gate-level
gradients are mapped to the bindings through the parameter expressions.

``lightning.gpu`` and ``lightning.kokkos`` are always registered. Their capabilities say whether
they can run here; using one that cannot raises an error naming what to install.

>>> import qstore.core as qc
>>> c = qc.UnifiedCircuit(1).add_gate("RY", 0, "x")
>>> LightningBackend().expectation(c, values=[[0.0], [3.14159265]]).round(6).tolist()
[[1.0], [-1.0]]
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import logging
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

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
from qstore.core.observables import PauliSum, as_observables
from qstore.sim.lightning._parameters import FloatArray, ParameterMap
from qstore.sim.lightning.lowering import (
    LightningOp,
    ObservableTerms,
    lower_circuit,
    parameter_matrix,
    split_observables,
)

logger = logging.getLogger(__name__)

_DTYPES = {"complex128": np.complex128, "complex64": np.complex64}
_MEASURE_BASIS = {
    "X": (LightningOp("Hadamard", ()),),
    "Y": (LightningOp("PhaseShift", (), offset=-math.pi / 2), LightningOp("Hadamard", ())),
}


def _pennylane() -> Any:
    try:
        import pennylane
    except ImportError as exc:
        raise MissingDependencyError(
            "The lightning backends need 'pennylane' and 'pennylane-lightning', which are not "
            "installed. Install them with: pip install qstore-sim-lightning (or pip install "
            "pennylane pennylane-lightning)."
        ) from exc
    return pennylane


@dataclass
class _Template:
    """One circuit template and column layout, lowered once (cached on the circuit)."""

    n_qubits: int
    pmap: ParameterMap
    ops: tuple[LightningOp, ...]
    tapes: dict[Any, Any] = field(default_factory=dict)  # per device / op list: _TapePlan


@dataclass
class _TapePlan:
    """Prebuilt pieces of the tapes of one op list on one device."""

    pieces: list[Any]  # shared operation, or (class, wires) for a bound one
    trainable: list[int]  # tape parameter indices that depend on a symbol
    theta_cols: npt.NDArray[np.intp]  # for each trainable one: its theta column
    theta_scale: FloatArray  # d(tape parameter)/d(theta)


class LightningBackend:
    """Batched simulation on a PennyLane Lightning device with adjoint-method gradients.

    Args:
        dtype: ``'complex128'`` (default) or ``'complex64'``.
        device_vjp: gradients by Lightning's vector-Jacobian product (default, one backward pass
            per sample) instead of full Jacobians (``False``; faster for very few observables
            and tiny circuits).
        seed: default seed for shot sampling (a per-call ``seed=`` overrides it).
        device_options: further keyword arguments for ``qml.device`` (e.g. ``batch_obs``).
    """

    name = "lightning"
    device_name = "lightning.qubit"
    package = "pennylane-lightning"
    gpu = False

    _probe_lock = threading.Lock()
    # device name -> (missing package?, reason); empty reason: the device runs here
    _probed: ClassVar[dict[str, tuple[bool, str]]] = {}

    def __init__(
        self,
        dtype: str = "complex128",
        device_vjp: bool = True,
        seed: int | None = None,
        device_options: Mapping[str, Any] | None = None,
    ) -> None:
        if dtype not in _DTYPES:
            raise BackendError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}.")
        reserved = sorted({"wires", "shots", "c_dtype"}.intersection(device_options or {}))
        if reserved:
            raise BackendError(
                f"device_options {reserved} are set by the backend (wires per circuit, exact "
                "expectations, dtype=); remove them."
            )
        self.dtype = dtype
        self.device_vjp = bool(device_vjp)
        self.seed = seed
        self.device_options = dict(device_options or {})
        self._rng = np.random.default_rng(seed)
        self._devices: dict[int, Any] = {}
        self._configs: dict[tuple[int, bool], Any] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dtype={self.dtype!r})"

    # -- availability and capabilities --------------------------------------------------------
    def _availability(self) -> tuple[bool, str]:
        """``(package missing, reason)``; the reason is empty when the device runs here.

        Probed once per process and device: the CPU device only needs its package; the others
        are started once on one wire, so a missing GPU or driver shows up here.
        """
        cls = type(self)
        with cls._probe_lock:
            if self.device_name not in cls._probed:
                cls._probed[self.device_name] = self._probe()
            return cls._probed[self.device_name]

    def _unavailable_reason(self) -> str:
        return self._availability()[1]

    def _probe(self) -> tuple[bool, str]:
        if importlib.util.find_spec("pennylane") is None:
            return True, "the 'pennylane' package is not installed (pip install pennylane)"
        devices = {ep.name for ep in importlib.metadata.entry_points(group="pennylane.plugins")}
        if self.device_name not in devices:
            need = " and an NVIDIA GPU with CUDA" if self.gpu else ""
            return True, (
                f"the PennyLane device {self.device_name!r} is not installed: it comes with the "
                f"{self.package} package (pip install {self.package}){need}"
            )
        if self.device_name == "lightning.qubit":
            return False, ""  # no hardware requirement; spare the PennyLane import
        try:
            _pennylane().device(self.device_name, wires=1)
        except Exception as exc:  # a device that cannot start here: report why
            return (
                False,
                f"{self.package} is installed but {self.device_name!r} cannot start: {exc}",
            )
        return False, ""

    @property
    def capabilities(self) -> Capabilities:
        reason = self._unavailable_reason()
        item = np.dtype(_DTYPES[self.dtype]).itemsize
        # The adjoint method keeps about four state vectors (state, costate and two scratch).
        max_q = math.floor(math.log2(max(memory_limit_bytes() / (4 * item), 2)))
        return Capabilities(
            name=self.name,
            max_qubits=max_q,
            exact=True,
            shots=True,
            gradient_methods=("adjoint", "parameter_shift", "finite_diff", "spsa"),
            vjp=True,
            gpu=self.gpu,
            available=not reason,
            reason=reason,
            dtypes=tuple(_DTYPES),
            extra={"device": self.device_name, "dtype": self.dtype, "device_vjp": self.device_vjp},
        )

    def _require(self) -> None:
        missing, reason = self._availability()
        if not reason:
            return
        error = MissingDependencyError if missing else CapabilityError
        raise error(f"Backend {self.name!r} cannot run here: {reason}.")

    # -- PennyLane plumbing -------------------------------------------------------------------
    def _device(self, n_qubits: int) -> Any:
        dev = self._devices.get(n_qubits)
        if dev is None:
            self._require()
            qml = _pennylane()
            dev = qml.device(
                self.device_name,
                wires=n_qubits,
                c_dtype=_DTYPES[self.dtype],
                **self.device_options,
            )
            self._devices[n_qubits] = dev
        return dev

    def _config(self, dev: Any, gradients: bool) -> Any:
        key = (id(dev), gradients)
        cfg = self._configs.get(key)
        if cfg is None:
            from pennylane.devices import ExecutionConfig

            base = ExecutionConfig(gradient_method="adjoint" if gradients else None)
            cfg = dev.setup_execution_config(base)
            self._configs[key] = cfg
        return cfg

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
        key = ("qstore.sim.lightning", len(circuit), bnames, snames)
        cache = circuit._program_cache
        tpl = cache.get(key)
        if not isinstance(tpl, _Template):
            pmap = ParameterMap.build(circuit, bnames, snames)
            tpl = _Template(circuit.n_qubits, pmap, lower_circuit(circuit, pmap.slots))
            if len(cache) > 16:
                cache.clear()
            cache[key] = tpl
        return tpl

    def _plan(self, tpl: _Template, ops: tuple[LightningOp, ...], dev: Any) -> _TapePlan:
        key = (id(dev), ops)
        plan = tpl.tapes.get(key)
        if isinstance(plan, _TapePlan):
            return plan
        qml = _pennylane()
        supported = dev.capabilities.gate_set() if hasattr(dev, "capabilities") else None
        symbolic = tpl.pmap.symbolic
        pieces: list[Any] = []
        trainable: list[int] = []
        cols: list[int] = []
        scales: list[float] = []
        k = 0  # tape parameter index
        for op in ops:
            if supported is not None and op.name not in supported:
                raise BackendError(
                    f"Device {self.device_name!r} does not apply {op.name} natively; the "
                    "lightning backend needs it to."
                )
            cls = getattr(qml, op.name)
            wires = qml.wires.Wires(op.wires)
            if op.bound:
                pieces.append((cls, wires))
                if symbolic[op.col]:
                    trainable.append(k)
                    cols.append(op.col)
                    scales.append(op.scale)
            else:
                pieces.append(cls(op.offset, wires=wires) if op.parametric else cls(wires=wires))
            k += int(op.parametric)
        plan = _TapePlan(
            pieces, trainable, np.asarray(cols, dtype=np.intp), np.asarray(scales, dtype=float)
        )
        tpl.tapes[key] = plan
        return plan

    def _tapes(
        self,
        tpl: _Template,
        ops: tuple[LightningOp, ...],
        theta: FloatArray,
        measurements: list[Any],
        dev: Any,
    ) -> tuple[list[Any], _TapePlan]:
        from pennylane.tape import QuantumScript

        plan = self._plan(tpl, ops, dev)
        tapes = []
        for row in parameter_matrix(ops, theta).tolist():
            it = iter(row)
            tape_ops = [
                p if not isinstance(p, tuple) else p[0](next(it), wires=p[1]) for p in plan.pieces
            ]
            tapes.append(QuantumScript(tape_ops, measurements, trainable_params=plan.trainable))
        return tapes, plan

    def _measurements(self, terms: ObservableTerms) -> list[Any]:
        qml = _pennylane()
        paulis = {"X": qml.PauliX, "Y": qml.PauliY, "Z": qml.PauliZ}
        out = []
        for o in terms.active:
            coeffs, words = [], []
            for w in terms.per_obs[o]:
                word, weight = terms.words[w]
                factors = [paulis[p](q) for q, p in word]
                words.append(factors[0] if len(factors) == 1 else qml.prod(*factors))
                coeffs.append(weight)
            if len(words) == 1 and coeffs[0] == 1.0:
                out.append(qml.expval(words[0]))
            else:
                out.append(qml.expval(qml.Hamiltonian(coeffs, words)))
        return out

    def _check_memory(self, n_qubits: int, kept_states: int) -> None:
        item = np.dtype(_DTYPES[self.dtype]).itemsize
        need = (4 + kept_states) * (1 << n_qubits) * item if n_qubits < 62 else math.inf
        limit = memory_limit_bytes()
        if need > limit:
            raise ResourceLimitError(
                f"Simulating {n_qubits} qubits on {self.device_name} (keeping {kept_states} "
                f"state(s)) needs about {need / 2**30:.1f} GiB, more than the "
                f"{limit / 2**30:.1f} GiB allowed. Use fewer qubits, a smaller batch, "
                "dtype='complex64', or raise QSTORE_MAX_MEMORY_GB."
            )

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

    def _expectation_tapes(
        self, tpl: _Template, terms: ObservableTerms, theta: FloatArray
    ) -> tuple[list[Any], _TapePlan, Any]:
        """One tape per binding measuring the active observables, its plan and the device."""
        self._check_memory(tpl.n_qubits, 0)
        dev = self._device(tpl.n_qubits)
        tapes, plan = self._tapes(tpl, tpl.ops, theta, self._measurements(terms), dev)
        return tapes, plan, dev

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
        if shots is not None:
            _check_shots(shots)
            return self._estimate(tpl, obs, theta, shots, self._generator(seed))
        out = np.tile(terms.constants, (theta.shape[0], 1))
        active = list(terms.active)
        if active:
            tapes, _, dev = self._expectation_tapes(tpl, terms, theta)
            res = dev.execute(tapes, self._config(dev, gradients=False))
            out[:, active] += np.asarray(res, dtype=np.float64).reshape(len(tapes), len(active))
        return out

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
        """Adjoint-method gradient of ``sum(cotangent * expectation)``.

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
        """Expectations and the VJP from one device call (forward pass and adjoint pass)."""
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
        out = np.tile(terms.constants, (bsz, 1))
        gtheta = np.zeros((bsz, pmap.n_theta))
        active = list(terms.active)
        if active:
            tapes, plan, dev = self._expectation_tapes(tpl, terms, theta)
            cfg = self._config(dev, gradients=True)
            ntr = len(plan.trainable)
            if ntr == 0:
                res = dev.execute(tapes, self._config(dev, gradients=False))
                grads = np.zeros((bsz, 0))
            elif self.device_vjp:
                c = cot[:, active]
                cots = [tuple(r) if len(active) > 1 else r[0] for r in c.tolist()]
                res, vjps = dev.execute_and_compute_vjp(tapes, cots, cfg)
                grads = np.asarray(vjps, dtype=np.float64).reshape(bsz, ntr)
            else:
                res, jacs = dev.execute_and_compute_derivatives(tapes, cfg)
                jac = np.asarray(jacs, dtype=np.float64).reshape(bsz, len(active), ntr)
                grads = np.einsum("bot,bo->bt", jac, cot[:, active])
            out[:, active] += np.asarray(res, dtype=np.float64).reshape(bsz, len(active))
            np.add.at(gtheta.T, plan.theta_cols, (grads * plan.theta_scale).T)
        gv = pmap.chain_rule(full, gtheta)
        nb = pmap.n_batched
        return out, gv[:, :nb], gv[:, nb:].sum(axis=0)

    def _states(
        self, tpl: _Template, ops: tuple[LightningOp, ...], theta: FloatArray
    ) -> npt.NDArray[np.complexfloating[Any, Any]]:
        self._check_memory(tpl.n_qubits, theta.shape[0])
        qml = _pennylane()
        dev = self._device(tpl.n_qubits)
        tapes, _ = self._tapes(tpl, ops, theta, [qml.state()], dev)
        res = dev.execute(tapes, self._config(dev, gradients=False))
        return np.asarray(res).reshape(theta.shape[0], 1 << tpl.n_qubits)

    def state(
        self,
        circuit: UnifiedCircuit,
        values: npt.ArrayLike | None = None,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
    ) -> npt.NDArray[np.complexfloating[Any, Any]]:
        """Final state vectors ``[batch, 2**n]`` (qubit 0 most significant)."""
        tpl, _, theta = self._prepare(circuit, values, names, shared)
        return self._states(tpl, tpl.ops, theta)

    def probabilities(
        self,
        circuit: UnifiedCircuit,
        values: npt.ArrayLike | None = None,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
    ) -> FloatArray:
        """Basis-state probabilities ``[batch, 2**n]``."""
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
                nz = np.flatnonzero(probs > 1e-15)
                pmap = {format(int(i), f"0{n}b"): float(probs[i]) for i in nz}
                return ExecutionResult(self.name, n, None, probabilities=pmap, expectations=z)
            idx = _sample_indices(probs[None], shots, self._generator(None))[0]
            return ExecutionResult(self.name, n, shots, counts=_counts(idx, n), expectations=z)

        try:
            return await asyncio.wait_for(asyncio.to_thread(work), timeout)
        except (TimeoutError, asyncio.TimeoutError) as exc:  # distinct classes on Python 3.10
            raise BackendError(
                f"{self.device_name} execution exceeded the timeout of {timeout} s."
            ) from exc

    # -- shots --------------------------------------------------------------------------------
    def _estimate(
        self,
        tpl: _Template,
        obs: list[PauliSum],
        theta: FloatArray,
        shots: int,
        rng: np.random.Generator,
    ) -> FloatArray:
        """Shot estimates: each Pauli term is measured in its own basis (rotations on device)."""
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
                        LightningOp(r.name, (q,), offset=r.offset)
                        for q, p in basis
                        for r in _MEASURE_BASIS[p]
                    )
                    states = self._states(tpl, tpl.ops + rotations, theta)
                    samples[basis] = _sample_indices(_probabilities(states), shots, rng)
                idx = samples[basis]
                parity = np.zeros(idx.shape, dtype=np.int64)
                for q in term.qubits:
                    parity ^= (idx >> (n - 1 - q)) & 1
                out[:, o] += coeff * (1 - 2 * parity).mean(axis=1)
        return out

    def _generator(self, seed: int | None) -> np.random.Generator:
        return self._rng if seed is None else np.random.default_rng(seed)


class LightningGPUBackend(LightningBackend):
    """``lightning.gpu``: PennyLane Lightning on an NVIDIA GPU (cuStateVec).

    Needs the ``pennylane-lightning-gpu`` package and a CUDA GPU; without them the backend is
    still listed, with ``capabilities.available`` false and the reason.
    """

    name = "lightning.gpu"
    device_name = "lightning.gpu"
    package = "pennylane-lightning-gpu"
    gpu = True


class LightningKokkosBackend(LightningBackend):
    """``lightning.kokkos``: PennyLane Lightning on Kokkos (OpenMP threads, or a GPU build).

    Needs the ``pennylane-lightning-kokkos`` package; without it the backend is still listed,
    with ``capabilities.available`` false and the reason.
    """

    name = "lightning.kokkos"
    device_name = "lightning.kokkos"
    package = "pennylane-lightning-kokkos"
    gpu = False


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
