"""The ``lightning``, ``lightning.gpu`` and ``lightning.kokkos`` backends: PennyLane Lightning.

A circuit template is lowered once to Lightning's native gates
(:mod:`qstore.sim.lightning.lowering`) and its observables to PennyLane measurements, both cached on
the circuit. A batch becomes one tape per binding (gates without bound parameters are shared between
tapes), executed by the device in one ``execute`` call; the device's transform pipeline is skipped
because every operation is native to it (checked once per device).

Gradients are Lightning's own adjoint method, and the forward pass keeps what it needs
(``value_and_vjp_fn``, :class:`qstore.core.adapter.KeepsForward`), so a training step simulates
the forward pass once:

* ``device_vjp=True`` (default): the forward pass runs on a device of its own that keeps each
  tape's final state (Lightning's device-VJP mode); the VJP is then Lightning's backward pass from
  those states for the cotangent-weighted observable (``compute_vjp``), one per tape whatever the
  number of observables;
* ``device_vjp=False``: the Jacobian of every observable by every gate parameter is computed in
  the same Lightning call as the expectations (``execute_and_compute_derivatives``); the VJP only
  contracts it with the cotangent (faster for very few observables and tiny circuits).

Gate-level gradients are mapped to the bindings through the parameter expressions
(:func:`qstore.core.backends.plugin.value_and_vjp_fn_by_gates`): the backend is built on the
public plugin kit, as a ``SimulatorCore`` with a ``GateGradient``.

``lightning.gpu`` and ``lightning.kokkos`` are always registered. Their capabilities say whether
they can run here; using one that cannot raises an error naming what to install.

>>> import qstore.core as qc
>>> c = qc.UnifiedCircuit(1).add_gate("RY", 0, "x")
>>> LightningBackend().expectation(c, values=[[0.0], [3.14159265]]).round(6).tolist()
[[1.0], [-1.0]]
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
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
    CapabilityError,
    MissingDependencyError,
    ResourceLimitError,
)
from qstore.sim.lightning.lowering import LightningOp, lower_circuit, parameter_matrix

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
class _Template(Template[LightningOp]):
    """A lowered template with its prebuilt tape pieces, per device kind and op list."""

    tapes: dict[Any, Any] = field(default_factory=dict)  # per device name / op list: _TapePlan


@dataclass
class _TapePlan:
    """Prebuilt pieces of the tapes of one op list on one kind of device."""

    pieces: list[Any]  # shared operation, or (class, wires) for a bound one
    trainable: list[int]  # tape parameter indices that depend on a symbol
    theta_cols: npt.NDArray[np.intp]  # for each trainable one: its theta column
    theta_scale: FloatArray  # d(tape parameter)/d(theta)


class LightningBackend(ProbabilitySampling, FusedVJP):
    """Batched simulation on a PennyLane Lightning device with adjoint-method gradients.

    Args:
        dtype: ``'complex128'`` (default) or ``'complex64'``.
        device_vjp: gradients by Lightning's vector-Jacobian product from the final states the
            forward pass kept (default, one backward pass per sample) instead of the full
            Jacobians computed with the forward pass (``False``; faster for very few
            observables and tiny circuits).
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
        self._configs: dict[str, Any] = {}

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
            extra={
                "device": self.device_name,
                "dtype": self.dtype,
                "device_vjp": self.device_vjp,
                "gradient": self._gradient(),
            },
        )

    def _gradient(self) -> str:
        """What ``vjp`` computes, in words (``capabilities.extra['gradient']``)."""
        if self.device_vjp:
            return "adjoint: Lightning's VJP from the final states kept by the forward pass"
        return "adjoint: Lightning's Jacobians, computed with the forward pass"

    def _require(self) -> None:
        missing, reason = self._availability()
        if not reason:
            return
        error = MissingDependencyError if missing else CapabilityError
        raise error(f"Backend {self.name!r} cannot run here: {reason}.")

    # -- PennyLane plumbing -------------------------------------------------------------------
    def _new_device(self, n_qubits: int) -> Any:
        self._require()
        return _pennylane().device(
            self.device_name, wires=n_qubits, c_dtype=_DTYPES[self.dtype], **self.device_options
        )

    def _device(self, n_qubits: int) -> Any:
        """The device this backend shares between calls on ``n_qubits`` qubits."""
        dev = self._devices.get(n_qubits)
        if dev is None:
            dev = self._devices[n_qubits] = self._new_device(n_qubits)
        return dev

    def _config(self, dev: Any, mode: str) -> Any:
        """The execution config for ``mode``: ``"run"`` (no gradient), ``"jacobian"`` (adjoint
        Jacobians) or ``"keep"`` (the device keeps final states for a later ``compute_vjp``)."""
        cfg = self._configs.get(mode)
        if cfg is None:
            from pennylane.devices import ExecutionConfig

            base = ExecutionConfig(
                gradient_method=None if mode == "run" else "adjoint",
                use_device_jacobian_product=mode == "keep",
            )
            cfg = self._configs[mode] = dev.setup_execution_config(base)
        return cfg

    def _plan(self, tpl: _Template, ops: tuple[LightningOp, ...], dev: Any) -> _TapePlan:
        key = (self.device_name, ops)
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

    # -- the simulator (plugin.SimulatorCore and plugin.GateGradient) --------------------------
    def template(
        self,
        circuit: UnifiedCircuit,
        names: Sequence[str] | None,
        shared: Mapping[str, float] | None,
    ) -> _Template:
        """``circuit`` lowered to Lightning's gates for this column layout (cached on it)."""
        return plugin.cached_template(
            _Template, "qstore.sim.lightning", circuit, names, shared, lower_circuit
        )

    def run_expectations(
        self, tpl: _Template, terms: ObservableTerms, theta: FloatArray
    ) -> FloatArray:
        """Exact expectations ``[R, n_obs]`` for every row of ``theta`` (one device call)."""
        out = np.tile(terms.constants, (theta.shape[0], 1))
        active = list(terms.active)
        if active:
            self._check_memory(tpl.n_qubits, 0)
            dev = self._device(tpl.n_qubits)
            tapes, _ = self._tapes(tpl, tpl.ops, theta, self._measurements(terms), dev)
            res = dev.execute(tapes, self._config(dev, "run"))
            out[:, active] += np.asarray(res, dtype=np.float64).reshape(len(tapes), len(active))
        return out

    def gate_vjp_fn(
        self, tpl: _Template, terms: ObservableTerms, theta: FloatArray
    ) -> tuple[FloatArray, Callable[[FloatArray], FloatArray]]:
        """Expectations ``[B, n_obs]`` and ``finish(cot) -> d/dtheta [B, G]`` by Lightning's
        adjoint method; the forward pass keeps what ``finish`` needs (see the module doc), so
        ``finish`` never simulates the circuit forward again."""
        bsz, n_theta = theta.shape[0], tpl.pmap.n_theta
        out = np.tile(terms.constants, (bsz, 1))
        active = list(terms.active)
        if not active:
            return out, lambda cot: np.zeros((bsz, n_theta))
        keep = self.device_vjp
        self._check_memory(tpl.n_qubits, bsz if keep else 0)
        # a device of its own keeps the final states until finish, whatever runs meanwhile
        dev = self._new_device(tpl.n_qubits) if keep else self._device(tpl.n_qubits)
        tapes, plan = self._tapes(tpl, tpl.ops, theta, self._measurements(terms), dev)
        ntr = len(plan.trainable)
        if ntr == 0:
            res = dev.execute(tapes, self._config(dev, "run"))

            def by_tape(cot: FloatArray) -> Any:
                return np.zeros((bsz, 0))

        elif keep:
            cfg = self._config(dev, "keep")
            res = dev.execute(tapes, cfg)

            def by_tape(cot: FloatArray) -> Any:
                c = cot[:, active]
                cots = [tuple(r) if len(active) > 1 else r[0] for r in c.tolist()]
                return dev.compute_vjp(tapes, cots, cfg)
        else:
            res, jacs = dev.execute_and_compute_derivatives(tapes, self._config(dev, "jacobian"))
            jac = np.asarray(jacs, dtype=np.float64).reshape(bsz, len(active), ntr)

            def by_tape(cot: FloatArray) -> Any:
                return np.einsum("bot,bo->bt", jac, cot[:, active])

        out[:, active] += np.asarray(res, dtype=np.float64).reshape(bsz, len(active))

        def finish(cot: FloatArray) -> FloatArray:
            grads = np.asarray(by_tape(cot), dtype=np.float64).reshape(bsz, ntr)
            gtheta = np.zeros((bsz, n_theta))
            np.add.at(gtheta.T, plan.theta_cols, (grads * plan.theta_scale).T)
            return gtheta

        return out, finish

    def basis_states(
        self, tpl: _Template, theta: FloatArray, basis: Basis
    ) -> npt.NDArray[np.complexfloating[Any, Any]]:
        """Final states ``[R, 2**n]`` with the qubits of ``basis`` rotated to Z on the device
        (for shot estimates); ``basis=()``: the plain final states."""
        rotations = tuple(
            LightningOp(r.name, (q,), offset=r.offset) for q, p in basis for r in _MEASURE_BASIS[p]
        )
        ops = tpl.ops + rotations
        self._check_memory(tpl.n_qubits, theta.shape[0])
        qml = _pennylane()
        dev = self._device(tpl.n_qubits)
        tapes, _ = self._tapes(tpl, ops, theta, [qml.state()], dev)
        res = dev.execute(tapes, self._config(dev, "run"))
        return np.asarray(res).reshape(theta.shape[0], 1 << tpl.n_qubits)

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
        """Expectations ``[B, n_obs]`` now, and ``finish(cotangent [B, n_obs]) -> (d/dvalues
        [B, n_batched], d/dshared [n_shared])`` by Lightning's adjoint method from what this
        forward pass kept (:class:`qstore.core.adapter.KeepsForward`); ``finish`` may be called
        more than once.

        >>> import math, qstore.core as qc
        >>> c = qc.UnifiedCircuit(1).add_gate("RY", 0, "x")
        >>> x = [[math.pi / 6], [math.pi / 2]]
        >>> values, finish = LightningBackend().value_and_vjp_fn(c, qc.Z(0), x)
        >>> d_values, d_shared = finish([[1.0], [2.0]])  # d/dx cos(x) = -sin(x)
        >>> d_values.round(6).tolist(), d_shared.shape
        ([[-0.5], [-2.0]], (0,))
        """
        return plugin.value_and_vjp_fn_by_gates(
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
        """Expectations and the adjoint VJP (:meth:`value_and_vjp_fn`, finished at once)."""
        forward = self.value_and_vjp_fn(circuit, observables, values, names=names, shared=shared)
        return plugin.vjp_at_once(forward, cotangent)

    def state(
        self,
        circuit: UnifiedCircuit,
        values: npt.ArrayLike | None = None,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
    ) -> npt.NDArray[np.complexfloating[Any, Any]]:
        """Final state vectors ``[batch, 2**n]`` (qubit 0 most significant)."""
        states: npt.NDArray[np.complexfloating[Any, Any]] = plugin.final_states(
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

    def _engine(self) -> str:
        return self.device_name


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
