"""The one bridge between the framework layers and an external backend (NumPy only).

``qstore.torch`` (a ``torch.autograd.Function``) and ``qstore.tf`` (``tf.custom_gradient``) hand
NumPy arrays to :class:`ExpectationAdapter` and get NumPy arrays back; everything else lives
here once: the binding layout (per-sample inputs ``[B, P]`` and shared weights ``[S]`` as
positional arrays), shots, which method computes the gradient, and what the forward pass keeps
for the backward pass.

**Which gradient** (:func:`resolve_gradient`). A backend's capabilities say what its own
``vjp`` computes (the first entry of ``capabilities.gradient_methods`` when
``capabilities.vjp`` is true: ``'adjoint'`` for ``local`` and Lightning). The layer option
``gradient_method`` picks:

* ``'auto'``: the backend's adjoint VJP when it has one and expectations are exact; otherwise
  parameter shift from :mod:`qstore.core.gradients` (exact, also with shots).
* ``'adjoint'``: the backend's adjoint VJP; refused (:class:`LayerConfigError`) with shots or
  on a backend whose gradient is not adjoint.
* ``'parameter_shift'``, ``'finite_diff'``, ``'spsa'``: :mod:`qstore.core.gradients` on the
  backend's ``expectation``, with the layer's shots.

**One forward simulation per training step.** :meth:`ExpectationAdapter.forward` returns a
:class:`Forward` that the framework keeps until the backward pass, and
:meth:`ExpectationAdapter.vjp` reuses it:

* a backend that implements :class:`KeepsForward` (``value_and_vjp_fn``) simulates the forward
  pass once, keeping what its VJP needs (states, ...); the VJP is then the backward pass only;
* the methods of :mod:`qstore.core.gradients` evaluate shifted or perturbed bindings only, never
  the unshifted forward again (this is also how backends whose own gradient is parameter shift
  are differentiated, so their fused shift sweep does not re-simulate the forward rows);
* a backend with an adjoint VJP but no :class:`KeepsForward` gets one fused ``value_and_vjp``
  call (else ``vjp``) in the backward pass; having kept nothing, its adjoint pass recomputes the
  forward states internally.

>>> import numpy as np
>>> import qstore.core as qc
>>> c = qc.UnifiedCircuit(1).add_gate("RY", 0, "x").add_gate("RZ", 0, "w")
>>> ad = ExpectationAdapter(c, "local", input_names=["x"], weight_names=["w"])
>>> fwd = ad.forward(np.array([[0.3]]), np.array([0.0]))
>>> gx, gw = ad.vjp(fwd, np.ones((1, 1)))
>>> bool(np.isclose(fwd.values[0, 0], np.cos(0.3))), bool(np.isclose(gx[0, 0], -np.sin(0.3)))
(True, True)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from qstore.core import backends as core_backends
from qstore.core import gradients as core_gradients
from qstore.core.circuit import UnifiedCircuit
from qstore.core.engine import adjoint, generic
from qstore.core.engine.program import compile_program
from qstore.core.errors import (
    BackendError,
    CapabilityError,
    LayerConfigError,
    LayerInputError,
    QStoreError,
)
from qstore.core.gates import GATES
from qstore.core.observables import PauliSum, as_observables
from qstore.core.validation import check_shots

__all__ = [
    "GRADIENT_METHODS",
    "ExpectationAdapter",
    "Forward",
    "GradientPlan",
    "KeepsForward",
    "UnitaryAdapter",
    "backend_gradient",
    "check_shots",
    "check_state_options",
    "resolve_backend",
    "resolve_gradient",
]

logger = logging.getLogger(__name__)

_ADJOINT_OPS = generic.NumpyOps(np.complex128)

FloatArray = npt.NDArray[np.float64]
ComplexArray = npt.NDArray[np.complex128]
VJPFn = Callable[[FloatArray], tuple[FloatArray, FloatArray]]

GRADIENT_METHODS = ("auto", "adjoint", "parameter_shift", "finite_diff", "spsa")
"""Values of the layers' ``gradient_method`` option."""

_CORE_METHODS = ("parameter_shift", "finite_diff", "spsa")


@runtime_checkable
class KeepsForward(Protocol):
    """A backend whose forward pass keeps what its VJP needs (optional, for speed).

    ``value_and_vjp_fn`` returns the expectations ``[B, n_obs]`` and a function of the cotangent
    ``[B, n_obs]`` that returns ``(d/dvalues [B, P], d/dshared [S])`` without simulating the
    forward pass again.
    """

    def value_and_vjp_fn(
        self,
        circuit: UnifiedCircuit,
        observables: Any,
        values: npt.ArrayLike | None,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
    ) -> tuple[FloatArray, VJPFn]: ...


# -- configuration ---------------------------------------------------------------------------------


def resolve_backend(backend: Any, options: Mapping[str, Any] | None = None) -> Any:
    """A backend instance from a registry name (created with ``options``) or an instance.

    >>> resolve_backend("local").name
    'local'
    """
    if isinstance(backend, str):
        try:
            return core_backends.get(backend, **dict(options or {}))
        except (TypeError, BackendError) as exc:  # options the backend's constructor refuses
            raise LayerConfigError(
                f"backend_options {dict(options or {})} do not fit backend {backend!r}: {exc}"
            ) from None
    if options:
        raise LayerConfigError(
            "backend_options only apply when backend is given by name; configure the "
            f"instance {backend!r} directly."
        )
    missing = [m for m in ("expectation", "capabilities") if not hasattr(backend, m)]
    if missing:
        raise LayerConfigError(
            f"backend must be a registered backend name or a backend object; {backend!r} "
            f"lacks {', '.join(missing)}."
        )
    return backend


def _name(backend: Any) -> str:
    return str(getattr(backend, "name", type(backend).__name__))


def backend_gradient(backend: Any) -> str | None:
    """What the backend's own ``vjp`` computes (``'adjoint'``, ``'parameter_shift'`` ...), or
    ``None`` when it has none: the first of ``capabilities.gradient_methods`` if
    ``capabilities.vjp`` is true.

    >>> backend_gradient(core_backends.get("local"))
    'adjoint'
    """
    caps = backend.capabilities
    has_vjp = callable(getattr(backend, "vjp", None)) or callable(
        getattr(backend, "value_and_vjp", None)
    )
    if not getattr(caps, "vjp", False) or not has_vjp:
        return None
    methods = tuple(getattr(caps, "gradient_methods", ()) or ())
    return str(methods[0]) if methods else None


@dataclass(frozen=True)
class GradientPlan:
    """How the gradient is computed: ``method``, by the backend's own VJP or by
    :mod:`qstore.core.gradients` (``by_backend`` false)."""

    method: str
    by_backend: bool

    def __str__(self) -> str:
        where = "the backend's vjp" if self.by_backend else "qstore.core.gradients"
        return f"{self.method} ({where})"


def resolve_gradient(
    backend: Any, gradient_method: str = "auto", shots: int | None = None
) -> GradientPlan:
    """The one place that decides how a layer on ``backend`` is differentiated.

    Raises :class:`LayerConfigError` for impossible combinations (adjoint with shots, adjoint
    on a backend without an adjoint VJP, shots on an exact-only backend).

    >>> local = core_backends.get("local")
    >>> str(resolve_gradient(local)), str(resolve_gradient(local, shots=100))
    ("adjoint (the backend's vjp)", 'parameter_shift (qstore.core.gradients)')
    """
    if gradient_method not in GRADIENT_METHODS:
        raise LayerConfigError(
            f"gradient_method must be one of {list(GRADIENT_METHODS)}, got {gradient_method!r}."
        )
    caps = backend.capabilities
    if shots is not None and not getattr(caps, "shots", True):
        raise LayerConfigError(
            f"Backend {_name(backend)!r} computes exact expectations only; drop shots= or pick "
            "a sampling backend (e.g. 'local')."
        )
    native = backend_gradient(backend)
    keeps = isinstance(backend, KeepsForward)
    if gradient_method == "auto":
        if shots is None and native is not None and (native == "adjoint" or keeps):
            return GradientPlan(native, True)
        return GradientPlan("parameter_shift", False)
    if gradient_method == "adjoint":
        if shots is not None:
            raise LayerConfigError(
                f"gradient_method='adjoint' is exact and cannot be combined with shots={shots}; "
                "use gradient_method='parameter_shift' (or 'auto') with shots."
            )
        if native != "adjoint":
            raise LayerConfigError(
                f"gradient_method='adjoint' needs a backend whose vjp is the adjoint method; "
                f"the gradient of {_name(backend)!r} is {native or 'not provided'}. Use "
                "'parameter_shift' or 'auto'."
            )
        return GradientPlan("adjoint", True)
    if native == gradient_method and keeps and shots is None:
        return GradientPlan(gradient_method, True)
    return GradientPlan(gradient_method, False)


# -- expectations ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Forward:
    """A forward pass kept for the backward pass: the bindings, the expectations ``[B, n_obs]``
    and, where the backend kept its states, the function that finishes the VJP."""

    inputs: FloatArray
    weights: FloatArray
    values: FloatArray
    vjp_fn: VJPFn | None = None


def _matrix(x: npt.ArrayLike, width: int, what: str) -> FloatArray:
    a = np.ascontiguousarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != width:
        raise LayerInputError(f"{what} must have shape [batch, {width}], got {list(a.shape)}.")
    return a


def _vector(w: npt.ArrayLike, size: int, what: str) -> FloatArray:
    a = np.ascontiguousarray(w, dtype=np.float64).reshape(-1)
    if a.size != size:
        raise LayerInputError(f"{what} must have {size} values, got {a.size}.")
    return a


class ExpectationAdapter:
    """One circuit template on one backend, as the framework layers run it.

    Args:
        circuit: the template; its symbols are ``input_names`` (one column of ``inputs [B, P]``
            each, per sample) and ``weight_names`` (``weights [S]``, shared by the batch).
        backend: a registry name (created with ``backend_options``) or a backend object.
        observables: ``None`` (``Z`` per qubit) or anything :func:`as_observables` takes.
        gradient_method: see :func:`resolve_gradient`.
        shots: shots per expectation (``None``: exact), for the forward pass and the gradient.

    Configuration errors raise :class:`LayerConfigError` here, at construction.
    """

    def __init__(
        self,
        circuit: UnifiedCircuit,
        backend: Any,
        input_names: Sequence[str],
        weight_names: Sequence[str],
        observables: Any = None,
        *,
        gradient_method: str = "auto",
        shots: int | None = None,
        backend_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.circuit = circuit
        self.input_names = tuple(input_names)
        self.weight_names = tuple(weight_names)
        self.backend = resolve_backend(backend, backend_options)
        self.shots = check_shots(shots)
        self.plan = resolve_gradient(self.backend, gradient_method, self.shots)
        try:
            self.observables: tuple[PauliSum, ...] = tuple(
                as_observables(observables, circuit.n_qubits)
            )
        except QStoreError as exc:
            raise LayerConfigError(
                f"Invalid observables for {circuit.n_qubits} qubits: {exc}"
            ) from exc
        self._method: core_gradients.GradientMethod | None = None
        if not self.plan.by_backend:
            self._method = core_gradients.get(self.plan.method, self.backend, shots=self.shots)
        logger.debug("%r on %s: gradient %s", circuit, _name(self.backend), self.plan)

    @property
    def n_observables(self) -> int:
        return len(self.observables)

    def _shared(self, weights: FloatArray) -> dict[str, float]:
        return dict(zip(self.weight_names, weights.tolist(), strict=True))

    def _check_values(self, out: Any, batch: int) -> FloatArray:
        arr = np.asarray(out, dtype=np.float64)
        if arr.size != batch * self.n_observables:
            raise BackendError(
                f"Backend {_name(self.backend)!r} returned {arr.size} expectations for "
                f"{batch} bindings and {self.n_observables} observables."
            )
        return arr.reshape(batch, self.n_observables)

    def forward(
        self, inputs: npt.ArrayLike, weights: npt.ArrayLike, *, keep: bool = True
    ) -> Forward:
        """Expectations for ``inputs [B, P]`` and ``weights [S]``; ``keep=False`` when no
        backward pass will follow (inference), so that nothing is kept for it."""
        x = _matrix(inputs, len(self.input_names), "inputs")
        w = _vector(weights, len(self.weight_names), "weights")
        if x.shape[0] == 0:
            return Forward(x, w, np.zeros((0, self.n_observables)))
        names, shared, obs = self.input_names, self._shared(w), list(self.observables)
        if keep and self.plan.by_backend and isinstance(self.backend, KeepsForward):
            out, fn = self.backend.value_and_vjp_fn(
                self.circuit, obs, x, names=names, shared=shared
            )
            return Forward(x, w, self._check_values(out, x.shape[0]), fn)
        out = self.backend.expectation(
            self.circuit, obs, x, names=names, shared=shared, shots=self.shots
        )
        return Forward(x, w, self._check_values(out, x.shape[0]))

    def __call__(self, inputs: npt.ArrayLike, weights: npt.ArrayLike) -> FloatArray:
        """Expectations ``[B, n_obs]`` (nothing kept)."""
        return self.forward(inputs, weights, keep=False).values

    def vjp(
        self, fwd: Forward, cotangent: npt.ArrayLike, *, inputs: bool = True
    ) -> tuple[FloatArray, FloatArray]:
        """``(d/dinputs [B, P], d/dweights [S])`` of ``sum(cotangent * values)`` at ``fwd``.

        ``inputs=False``: the inputs need no gradient (data fed to a first layer); a
        parameter-shift gradient then shifts only the gates that depend on the weights, and
        ``d/dinputs`` is zeros.
        """
        x, w = fwd.inputs, fwd.weights
        cot = np.asarray(cotangent, dtype=np.float64)
        if cot.shape != fwd.values.shape:
            raise LayerInputError(
                f"cotangent must have the shape of the expectations {list(fwd.values.shape)}, "
                f"got {list(cot.shape)}."
            )
        if x.shape[0] == 0:
            return np.zeros_like(x), np.zeros_like(w)
        names, shared, obs = self.input_names, self._shared(w), list(self.observables)
        if fwd.vjp_fn is not None:
            gx, gw = fwd.vjp_fn(cot)
        elif self._method is not None:
            gx, gw = self._method.vjp(
                self.circuit, obs, x, cot, names=names, shared=shared, inputs=inputs
            )
        else:
            fused = getattr(self.backend, "value_and_vjp", None)
            if callable(fused):
                _, gx, gw = fused(self.circuit, obs, x, cot, names=names, shared=shared)
            else:
                gx, gw = self.backend.vjp(self.circuit, obs, x, cot, names=names, shared=shared)
        return (
            np.asarray(gx, dtype=np.float64).reshape(x.shape),
            np.asarray(gw, dtype=np.float64).reshape(w.shape),
        )


# -- unitaries (quantum-state inputs on external backends) -----------------------------------------


def check_state_options(gradient_method: str, shots: int | None) -> None:
    """Refuse options that a layer evolving quantum states on an external backend (state
    inputs, ``encoding='amplitude'``) cannot honour: it evolves the state exactly, by the
    circuit's unitary, differentiated by the exact rotation shift rule."""
    if shots is not None:
        raise LayerConfigError(
            f"shots={shots} cannot apply to quantum-state inputs or encoding='amplitude', which "
            "evolve the state exactly; use encoding='angle' or 'reupload' with shots."
        )
    if gradient_method not in ("auto", "parameter_shift"):
        raise LayerConfigError(
            f"gradient_method={gradient_method!r} cannot apply to quantum-state inputs or "
            "encoding='amplitude' on an external backend: the circuit's unitary is "
            "differentiated by the exact shift rule ('auto' or 'parameter_shift')."
        )


_SHIFTABLE = frozenset({"RX", "RY", "RZ", "RXX", "RYY", "RZZ"})


def _check_shiftable(circuit: UnifiedCircuit, weight_names: Sequence[str]) -> None:
    """Every weight must be the plain angle of one rotation ``exp(-i w P / 2)``."""
    wanted = set(weight_names)
    seen: set[str] = set()
    for op in circuit:
        used = wanted.intersection(op.symbols)
        if not used:
            continue
        ok = GATES[op.gate].name in _SHIFTABLE and all(
            p.is_linear() and len(p.symbols) <= 1 and p.derivative(s).constant == 1.0
            for p in op.params
            for s in p.symbols
        )
        if not ok or seen & used:
            raise CapabilityError(
                f"Weight(s) {sorted(used)} of gate {op} are not plain angles of one rotation "
                "each; quantum-state inputs on external backends support RX/RY/RZ/RXX/RYY/RZZ(w)."
            )
        seen |= used


class UnitaryAdapter:
    """A circuit's unitary ``U(w)`` evaluated outside the framework, and its VJP.

    A layer fed a quantum state ``psi [B, 2**n]`` returns ``psi @ U(w).T``; the framework
    differentiates that product, this class differentiates ``U``. ``unitaries(w [V, S])`` returns
    ``[V, dim, dim]`` for ``V`` weight vectors. :meth:`on_backend` builds ``unitaries`` on any
    backend with ``state()`` and knows the circuit: the gradient is then the core engine's adjoint
    pass started from the columns of ``U`` (the backend's final states), with no further backend
    call. Without a circuit it uses ``dU/dw_k = U(w + pi e_k) / 2`` (exact for weights that are
    plain rotation angles), all shifted unitaries in one call.
    """

    def __init__(
        self,
        unitaries: Callable[[FloatArray], ComplexArray],
        dim: int,
        circuit: UnifiedCircuit | None = None,
        weight_names: Sequence[str] = (),
    ) -> None:
        self.unitaries = unitaries
        self.dim = dim
        self.circuit = circuit
        self.weight_names = tuple(weight_names)
        self._last: tuple[bytes, ComplexArray] | None = None  # the last forward's U, for its VJP

    @classmethod
    def on_backend(
        cls,
        circuit: UnifiedCircuit,
        backend: Any,
        weight_names: Sequence[str],
        *,
        backend_options: Mapping[str, Any] | None = None,
    ) -> UnitaryAdapter:
        """Column ``j`` of ``U`` is the backend's final state for ``|j>``: from the backend's own
        ``unitary(circuit, shared=...)`` where it has one, else from its ``state`` for the basis
        states prepared by ``RY(pi)`` on the qubits that are 1 in ``j`` (exact bit flips), all
        in one call.

        >>> import qstore.core as qc
        >>> c = qc.UnifiedCircuit(1).add_gate("RY", 0, "w")
        >>> u = UnitaryAdapter.on_backend(c, "local", ["w"]).unitary([np.pi])
        >>> np.round(u.real, 12).tolist()  # RY(pi) = [[0, -1], [1, 0]]
        [[0.0, -1.0], [1.0, 0.0]]
        """
        be = resolve_backend(backend, backend_options)
        state = getattr(be, "state", None)
        if not callable(state):
            raise LayerConfigError(
                f"Backend {_name(be)!r} cannot return state vectors, which a layer fed a "
                "quantum state needs; use the framework's built-in engine for state inputs, "
                "or feed the layer classical features."
            )
        try:
            _check_shiftable(circuit, weight_names)
        except CapabilityError as exc:
            raise LayerConfigError(str(exc)) from None
        n = circuit.n_qubits
        dim = 1 << n
        native = getattr(be, "unitary", None)
        if callable(native):  # the backend computes U itself (qsim: one circuit, every basis state)
            wnames = tuple(weight_names)

            def by_backend(w: FloatArray) -> ComplexArray:
                return np.stack(
                    [
                        np.asarray(
                            native(circuit, shared=dict(zip(wnames, row.tolist(), strict=True))),
                            dtype=np.complex128,
                        )
                        for row in w
                    ]
                )

            return cls(by_backend, dim, circuit, weight_names)
        prep = UnifiedCircuit(n, name="basis_prep")
        names = tuple(f"_basis_{q}" for q in range(n)) + tuple(weight_names)
        for q in range(n):
            prep.add_gate("RY", q, names[q])
        full = prep.compose(circuit)
        j = np.arange(dim)[:, None]
        angles = np.pi * ((j >> (n - 1 - np.arange(n))[None, :]) & 1).astype(np.float64)

        def unitaries(w: FloatArray) -> ComplexArray:
            v = w.shape[0]
            values = np.concatenate([np.tile(angles, (v, 1)), np.repeat(w, dim, axis=0)], axis=1)
            states = np.asarray(state(full, values, names=names))  # row j of block v: U_v |j>
            return np.asarray(states.reshape(v, dim, dim).transpose(0, 2, 1), dtype=np.complex128)

        return cls(unitaries, dim, circuit, weight_names)

    def unitary(self, weights: npt.ArrayLike) -> ComplexArray:
        """``U(w)`` ``[dim, dim]`` (column ``j`` is ``U |j>``)."""
        w = np.asarray(weights, dtype=np.float64).reshape(1, -1)
        u: ComplexArray = np.asarray(self.unitaries(w)[0], dtype=np.complex128)
        self._last = (w.tobytes(), u)
        return u

    def vjp(self, weights: npt.ArrayLike, cotangent: npt.ArrayLike) -> FloatArray:
        """``d/dw`` of the real loss whose gradient with respect to ``U`` is ``cotangent``
        (``dL/dRe U + i dL/dIm U``, the convention of torch and TensorFlow)."""
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        g = np.asarray(cotangent, dtype=np.complex128).reshape(self.dim, self.dim)
        if w.size == 0:
            return np.zeros(0)
        if self.circuit is not None:
            return self._adjoint_vjp(w, g)
        du = np.asarray(self.unitaries(w[None, :] + np.pi * np.eye(w.size))) / 2  # [S, dim, dim]
        return np.asarray(np.einsum("kij,ij->k", du, g.conj()).real, dtype=np.float64)

    def _adjoint_vjp(self, w: FloatArray, g: ComplexArray) -> FloatArray:
        """The adjoint pass from the columns of ``U`` (final states of the basis states)."""
        assert self.circuit is not None
        last = self._last
        u = last[1] if last is not None and last[0] == w.reshape(1, -1).tobytes() else None
        if u is None:
            u = self.unitary(w)
        circuit, wnames = self.circuit, self.weight_names
        prog = circuit.compiled(
            ("qstore.core.adapter.unitary", wnames),
            lambda: compile_program(circuit, (), wnames, None),
        )
        ops = _ADJOINT_OPS
        values = np.broadcast_to(w, (self.dim, w.size))
        tr = adjoint.trace_from_final(ops, prog, values, np.ascontiguousarray(u.T))
        # the cotangent is 2 dL/d conj(U): row j of lam is half of column j of g
        got = adjoint.backward(ops, prog, tr, np.ascontiguousarray(g.T) * 0.5)
        gw: FloatArray = np.asarray(got.rows, dtype=np.float64).sum(axis=0)
        if got.total is not None:
            gw = gw + np.asarray(got.total, dtype=np.float64)
        return gw
