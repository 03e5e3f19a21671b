"""What every gradient method shares: binding layout, the batched Jacobian/VJP forms and the
single-point ``compute`` API.

Bindings follow the backend convention (:mod:`qstore.core.backends.base`): ``values`` is a
``[batch, P]`` matrix whose columns are named by ``names`` (default: every circuit symbol not
in ``shared``, in order of first appearance) and ``shared`` maps the symbols that are the same
for every sample (typically the trainable weights) to their values.

* ``jacobian(circuit, observables, values, names, shared)`` returns ``(J_values [B, n_obs, P],
  J_shared [B, n_obs, S])``: per-sample derivatives of every expectation.
* ``vjp(circuit, observables, values, cotangent, names, shared)`` returns ``(g_values [B, P],
  g_shared [S])``, the gradient of ``sum(cotangent * expectations)``, like ``Backend.vjp``
  (shared gradients are summed over the batch).
"""

from __future__ import annotations

import abc
import asyncio
import logging
import math
import numbers
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from qstore.core.circuit import UnifiedCircuit
from qstore.core.errors import (
    BackendError,
    BindingError,
    GradientError,
    NonFiniteParameterError,
    UnboundParameterError,
)
from qstore.core.observables import PauliSum, as_observables
from qstore.core.parameters import Expression, Parameter
from qstore.core.validation import check_cotangent, check_shots

FloatArray = npt.NDArray[np.float64]
LossFn = Callable[[FloatArray], Any]
ParametersArg = (
    Mapping[str, float | Expression]
    | Mapping[Parameter, float | Expression]
    | Sequence[str | Parameter]
)
ValuesArg = Mapping[str, float] | Mapping[Parameter, float]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GradientResult:
    """The gradient of a scalar loss at one point, as returned by ``compute``.

    ``gradients`` maps every requested symbol to ``d loss / d symbol``; ``expectations`` are the
    observable values the loss was computed from; ``n_circuit_evaluations`` counts the circuit
    executions (binding rows) sent to the backend, an adjoint pass counting as one.
    """

    gradients: Mapping[str, float]
    loss: float
    n_circuit_evaluations: int
    method: str
    expectations: FloatArray = field(default_factory=lambda: np.zeros(0), compare=False)

    def as_array(self, order: Sequence[str] | None = None) -> FloatArray:
        """Gradients as a vector, in ``order`` (default: insertion order)."""
        keys = list(self.gradients) if order is None else list(order)
        return np.asarray([self.gradients[k] for k in keys], dtype=np.float64)

    def __str__(self) -> str:
        body = ", ".join(f"{k}: {v:+.6g}" for k, v in self.gradients.items())
        return (
            f"GradientResult(method={self.method}, loss={self.loss:.6g}, "
            f"evaluations={self.n_circuit_evaluations}, gradients={{{body}}})"
        )


@dataclass(frozen=True)
class Bindings:
    """A validated batch: ``values [B, P]`` named ``names`` plus ``shared [S]``."""

    names: tuple[str, ...]
    shared_names: tuple[str, ...]
    values: FloatArray
    shared: FloatArray

    @property
    def batch(self) -> int:
        return int(self.values.shape[0])

    @property
    def all_names(self) -> tuple[str, ...]:
        return self.names + self.shared_names

    @property
    def full(self) -> FloatArray:
        """``[B, P + S]``: per-sample columns, then the shared values broadcast."""
        if not self.shared_names:
            return self.values
        tiled = np.broadcast_to(self.shared, (self.batch, self.shared.size))
        return np.concatenate([self.values, tiled], axis=1)

    @property
    def index(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.all_names)}

    def shared_mapping(self) -> dict[str, float] | None:
        if not self.shared_names:
            return None
        return dict(zip(self.shared_names, self.shared.tolist(), strict=True))


def bindings(
    circuit: UnifiedCircuit,
    values: npt.ArrayLike | None,
    names: Sequence[str] | None = None,
    shared: Mapping[str, float] | None = None,
) -> Bindings:
    """Validate a batch of bindings for ``circuit`` (same rules as the local backend)."""
    if shared is not None and not isinstance(shared, Mapping):
        raise BindingError(
            f"shared must be a mapping {{symbol: value}}, got {type(shared).__name__}."
        )
    shared_names = tuple(str(k) for k in shared) if shared else ()
    if names is None:
        skip = set(shared_names)
        bnames = tuple(s for s in circuit.parameters if s not in skip)
    elif isinstance(names, str):
        raise BindingError(f"names must be a sequence of symbol names, not the string {names!r}.")
    else:
        bnames = tuple(names)
    all_names = bnames + shared_names
    if len(set(all_names)) != len(all_names):
        dup = sorted({x for x in all_names if all_names.count(x) > 1})
        raise BindingError(f"Parameter name(s) {dup} are given more than once (names/shared).")
    missing = [s for s in circuit.parameters if s not in set(all_names)]
    if missing:
        raise UnboundParameterError(
            f"The circuit's symbol(s) {missing} have no values; pass them as columns of the "
            f"parameter batch (names=...) or as shared values. Known columns: {list(all_names)}."
        )
    p = len(bnames)
    if values is None:
        if p:
            raise BindingError(
                f"The circuit needs per-sample values for {list(bnames)}; pass values=."
            )
        v = np.zeros((1, 0))
    else:
        try:
            v = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise BindingError(
                f"values must be a real [batch, {p}] array with columns {list(bnames)}: {exc}"
            ) from None
        if v.ndim == 1 and p and v.shape[0] == p:
            v = v[None, :]
        if v.ndim != 2 or v.shape[1] != p or v.shape[0] == 0:
            raise BindingError(
                f"values must have shape [batch >= 1, {p}] with columns {list(bnames)}; "
                f"got shape {list(v.shape)}."
            )
    try:
        s = np.asarray([float(shared[k]) for k in shared_names] if shared else [], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise BindingError(f"shared values must be real numbers: {exc}") from None
    if not np.isfinite(v).all():
        bad = np.argwhere(~np.isfinite(v))[0]
        raise NonFiniteParameterError(
            f"Parameter bindings contain NaN or infinity (first at row {bad[0]}, column "
            f"{bnames[bad[1]]!r}); all values must be finite."
        )
    if not np.isfinite(s).all():
        bad_s = [k for k, x in zip(shared_names, s.tolist(), strict=True) if not math.isfinite(x)]
        raise NonFiniteParameterError(f"Shared value(s) for {bad_s} are NaN or infinite.")
    return Bindings(bnames, shared_names, np.ascontiguousarray(v), s)


def evaluate(
    backend: Any,
    circuit: UnifiedCircuit,
    observables: list[PauliSum],
    rows: FloatArray,
    names: Sequence[str],
    shots: int | None,
    seed: int | None,
) -> FloatArray:
    """One ``backend.expectation`` call on stacked bindings ``[..., P]``: ``[..., n_obs]``.

    Leading axes (shifts, perturbations, samples) are flattened into one batch and restored.
    """
    flat = rows.reshape(-1, rows.shape[-1])
    out = np.asarray(
        backend.expectation(circuit, observables, flat, names=tuple(names), shots=shots, seed=seed),
        dtype=np.float64,
    )
    if out.shape != (flat.shape[0], len(observables)):
        raise BackendError(
            f"Backend {getattr(backend, 'name', backend)!r} returned expectations of shape "
            f"{list(out.shape)} for {flat.shape[0]} bindings and {len(observables)} "
            "observables; expected [batch, n_observables]."
        )
    logger.debug("evaluated %d bindings of %r", flat.shape[0], circuit)
    return out.reshape(*rows.shape[:-1], len(observables))


def loss_gradient(loss_fn: LossFn, e: FloatArray, step: float = 1e-3) -> FloatArray:
    """``d loss / d expectations`` by fourth-order central differences of the classical loss.

    Error ``O(step**4)`` plus rounding ``O(1e-16 / step)``: about 1e-13 for smooth losses.
    """
    grad = np.zeros_like(e)
    for o in range(e.size):
        h = step * max(1.0, abs(float(e[o])))
        f = []
        for k in (2.0, 1.0, -1.0, -2.0):
            x = e.copy()
            x[o] += k * h
            f.append(_scalar_loss(loss_fn, x))
        grad[o] = (-f[0] + 8.0 * f[1] - 8.0 * f[2] + f[3]) / (12.0 * h)
    return grad


def _scalar_loss(loss_fn: LossFn, e: FloatArray) -> float:
    out = loss_fn(e)
    try:
        value = float(np.asarray(out, dtype=np.float64).reshape(()))
    except (TypeError, ValueError):
        raise GradientError(
            f"loss_fn must return one real number for an expectation vector of shape "
            f"{list(e.shape)}; it returned {out!r}."
        ) from None
    if not math.isfinite(value):
        raise GradientError(f"loss_fn returned {value} for expectations {e.tolist()}.")
    return value


class GradientMethod(abc.ABC):
    """Base of the gradient methods: subclasses provide the batched Jacobian.

    Args:
        backend: anything with the backend ``expectation`` method (``vjp`` for the adjoint
            method); local simulators, plugins and remote services alike.
        shots: default shots for the circuit evaluations (``None``: exact expectations).
        seed: default seed for shot sampling.
    """

    method: ClassVar[str] = ""

    def __init__(self, backend: Any, *, shots: int | None = None, seed: int | None = None) -> None:
        if not callable(getattr(backend, "expectation", None)):
            raise GradientError(
                f"{type(self).__name__} needs a backend with an expectation() method "
                f"(see qstore.core.backends.base.Backend); got {type(backend).__name__}."
            )
        self.backend = backend
        self.shots = check_shots(shots)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise GradientError(f"seed must be an int or None, got {seed!r}.")
        self.seed = seed

    def __repr__(self) -> str:
        return f"{type(self).__name__}(backend={getattr(self.backend, 'name', self.backend)!r})"

    # -- the one thing a method provides --------------------------------------------------------
    @abc.abstractmethod
    def _jacobian(
        self,
        circuit: UnifiedCircuit,
        observables: list[PauliSum],
        b: Bindings,
        shots: int | None,
        seed: int | None,
    ) -> tuple[FloatArray, int]:
        """``(J [B, n_obs, P + S], circuit evaluations)``, columns as in ``b.all_names``."""

    def _vjp(
        self,
        circuit: UnifiedCircuit,
        observables: list[PauliSum],
        b: Bindings,
        cot: FloatArray,
        shots: int | None,
        seed: int | None,
        inputs: bool = True,
    ) -> tuple[FloatArray, FloatArray, int]:
        """The VJP; with ``inputs=False`` a method may skip the work for the per-sample columns
        (their gradient is then zeros)."""
        jac, n_eval = self._jacobian(circuit, observables, b, shots, seed)
        g = np.einsum("bo,boc->bc", cot, jac)
        p = len(b.names)
        return g[:, :p], g[:, p:].sum(axis=0), n_eval

    # -- public batched forms -------------------------------------------------------------------
    def jacobian(
        self,
        circuit: UnifiedCircuit,
        observables: Any,
        values: npt.ArrayLike | None,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
        *,
        shots: int | None = None,
        seed: int | None = None,
    ) -> tuple[FloatArray, FloatArray]:
        """Per-sample Jacobians ``(J_values [B, n_obs, P], J_shared [B, n_obs, S])``."""
        obs, b, shots, seed = self._inputs(circuit, observables, values, names, shared, shots, seed)
        jac, _ = self._jacobian(circuit, obs, b, shots, seed)
        p = len(b.names)
        return jac[:, :, :p], jac[:, :, p:]

    def vjp(
        self,
        circuit: UnifiedCircuit,
        observables: Any,
        values: npt.ArrayLike | None,
        cotangent: npt.ArrayLike,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
        *,
        shots: int | None = None,
        seed: int | None = None,
        inputs: bool = True,
    ) -> tuple[FloatArray, FloatArray]:
        """Gradient of ``sum(cotangent * expectations)``: ``(g_values [B, P], g_shared [S])``.

        ``inputs=False`` says the per-sample values need no gradient (a first layer fed data):
        parameter shift then shifts only the gates that depend on shared values (fewer circuits,
        less money on hardware) and ``g_values`` is zeros.
        """
        obs, b, shots, seed = self._inputs(circuit, observables, values, names, shared, shots, seed)
        cot = check_cotangent(cotangent, b.batch, len(obs))
        gv, gs, _ = self._vjp(circuit, obs, b, cot, shots, seed, inputs)
        return gv, gs

    def _inputs(
        self,
        circuit: UnifiedCircuit,
        observables: Any,
        values: npt.ArrayLike | None,
        names: Sequence[str] | None,
        shared: Mapping[str, float] | None,
        shots: int | None,
        seed: int | None,
    ) -> tuple[list[PauliSum], Bindings, int | None, int | None]:
        if not isinstance(circuit, UnifiedCircuit):
            raise GradientError(
                f"Expected a qstore.core.UnifiedCircuit, got {type(circuit).__name__}; convert "
                "Cirq/Qiskit circuits with UnifiedCircuit.from_cirq / from_qiskit."
            )
        obs = as_observables(observables, circuit.n_qubits)
        b = bindings(circuit, values, names, shared)
        shots = self.shots if shots is None else check_shots(shots)
        return obs, b, shots, self.seed if seed is None else seed

    # -- single point, scalar loss --------------------------------------------------------------
    async def compute(
        self,
        circuit: UnifiedCircuit,
        loss_fn: LossFn,
        parameters: ParametersArg,
        observables: Any = None,
        shots: int | None = None,
        *,
        values: ValuesArg | Sequence[float] | npt.NDArray[np.float64] | None = None,
        seed: int | None = None,
    ) -> GradientResult:
        """Gradient of ``loss_fn(expectations)`` with respect to ``parameters``, at one point.

        **What is differentiated, and at which values.** ``parameters`` names the circuit's
        symbols to differentiate, in one of these forms:

        * a mapping name → value, ``{"theta_0": 0.3, "theta_1": -1.2}`` (also keyed by
          :class:`~qstore.core.Parameter`): the values are the point;
        * ``circuit.parameters`` (name → :class:`~qstore.core.Parameter`, no values) or a list
          of names/Parameters: the values come from ``values=``, either a mapping name → value
          or a sequence (array) in the order of ``parameters``. A symbol with no value
          anywhere is taken at 0.0 with a :class:`UserWarning` naming it — so the seed's
          ``compute(circuit=compiled, loss_fn=..., parameters=circuit.parameters)`` gives the
          gradient at the all-zeros point, where a freshly built ansatz starts.

        Circuit symbols not in ``parameters`` are held fixed at their ``values=`` entries
        (:class:`~qstore.core.errors.UnboundParameterError` when they have none). Names the
        circuit does not have, in ``parameters`` or ``values``, raise
        :class:`~qstore.core.errors.BindingError`.

        **What** ``loss_fn`` **receives.** A new one-dimensional ``float64`` NumPy array ``e``
        of shape ``[n_observables]``: ``e[i]`` is the expectation of ``observables[i]``
        (default: ``Z`` on every qubit, so ``e[q] = <Z_q>``), exact when ``shots`` is None and
        estimated from ``shots`` samples per circuit otherwise. Not an
        :class:`~qstore.core.ExecutionResult`: the loss must be a function of the expectations
        for the chain rule. ``loss_fn`` returns one real number.

        The gradient is ``Σ_o (∂loss/∂e_o) ∂e_o/∂θ``: ``∂loss/∂e`` by fourth-order central
        differences of ``loss_fn`` (cheap classical code, four calls per observable), ``∂e/∂θ``
        by this method's VJP. The blocking work runs in a worker thread.

        >>> import asyncio, qstore.core as qc
        >>> from qstore.core.backends.local import LocalBackend
        >>> from qstore.core.gradients import ParameterShiftGradient
        >>> c = qc.UnifiedCircuit(1).add_gate("RY", 0, "t")
        >>> g = ParameterShiftGradient(LocalBackend())
        >>> r = asyncio.run(
        ...     g.compute(circuit=c, loss_fn=lambda e: e[0] ** 2, parameters={"t": 0.5})
        ... )
        >>> bool(np.isclose(r.gradients["t"], -2 * np.cos(0.5) * np.sin(0.5), atol=1e-9))
        True
        >>> r = asyncio.run(g.compute(c, lambda e: e[0], parameters=c.parameters, values=[0.5]))
        >>> bool(np.isclose(r.gradients["t"], -np.sin(0.5), atol=1e-9))
        True
        """
        if not isinstance(circuit, UnifiedCircuit):
            raise GradientError(
                f"compute() needs a qstore.core.UnifiedCircuit, got {type(circuit).__name__}."
            )
        if not callable(loss_fn):
            raise GradientError(f"loss_fn must be callable, got {loss_fn!r}.")
        trainable, point, fixed = _resolve_point(circuit, parameters, values)
        obs = as_observables(observables, circuit.n_qubits)
        shots = self.shots if shots is None else check_shots(shots)
        seed = self.seed if seed is None else seed
        b = bindings(circuit, np.asarray([point]), trainable, fixed)

        def work() -> GradientResult:
            e = evaluate(self.backend, circuit, obs, b.full, b.all_names, shots, seed)[0]
            loss = _scalar_loss(loss_fn, e.copy())
            cot = loss_gradient(loss_fn, e)[None]
            grad_seed = None if seed is None else seed + 1  # independent shot noise
            gv, _, n_eval = self._vjp(circuit, obs, b, cot, shots, grad_seed)
            grads = {name: float(gv[0, i]) for i, name in enumerate(trainable)}
            return GradientResult(grads, loss, n_eval + 1, self.method, e)

        return await asyncio.to_thread(work)


def _key(k: object) -> str:
    if isinstance(k, Parameter):
        return k.name
    if isinstance(k, str):
        return k
    raise BindingError(f"Parameter keys must be symbol names or Parameters, got {k!r}.")


def _requested(parameters: ParametersArg) -> list[tuple[str, float | None]]:
    """``parameters`` as (name, value or None) pairs, in order."""
    if isinstance(parameters, Mapping):
        items: list[tuple[str, float | None]] = []
        for k, v in parameters.items():
            name = _key(k)
            if isinstance(v, Parameter) or v is None:
                items.append((name, None))
            elif isinstance(v, Expression):
                if not v.is_constant:
                    raise BindingError(
                        f"parameters[{name!r}] is the expression {v}; give a number (the value "
                        "to differentiate at) or the symbol's Parameter."
                    )
                items.append((name, _real(v.constant, name)))
            else:
                items.append((name, _real(v, name)))
        return items
    if isinstance(parameters, Sequence) and not isinstance(parameters, str):
        return [(_key(k), None) for k in parameters]
    raise GradientError(
        "parameters must map symbol names to values ({'theta': 0.1}), or be "
        f"circuit.parameters or a list of names; got {type(parameters).__name__}."
    )


def _given_values(
    values: ValuesArg | Sequence[float] | npt.NDArray[np.float64] | None,
    items: list[tuple[str, float | None]],
) -> dict[str, float]:
    """``values=`` as name -> value; a sequence pairs with the names of ``parameters``."""
    if values is None:
        return {}
    if isinstance(values, Mapping):
        return {_key(k): _real(v, _key(k)) for k, v in values.items()}
    if isinstance(values, str):
        raise BindingError(f"values must be a mapping or a sequence of numbers, not {values!r}.")
    arr = np.asarray(values, dtype=object)
    if arr.ndim != 1 or arr.shape[0] != len(items):
        raise BindingError(
            f"values= as a sequence pairs with parameters {[n for n, _ in items]}: expected "
            f"{len(items)} numbers, got shape {list(arr.shape)}. Pass a mapping "
            "{name: value} to give values for other symbols too."
        )
    numbered = [n for n, v in items if v is not None]
    if numbered:
        raise BindingError(
            f"parameters already gives values for {numbered}; pass values= as a mapping "
            "{name: value}, or parameters without values."
        )
    return {name: _real(v, name) for (name, _), v in zip(items, arr.tolist(), strict=True)}


def _resolve_point(
    circuit: UnifiedCircuit,
    parameters: ParametersArg,
    values: ValuesArg | Sequence[float] | npt.NDArray[np.float64] | None,
) -> tuple[tuple[str, ...], list[float], dict[str, float]]:
    """Trainable names, their values, and the values of the other (fixed) circuit symbols."""
    items = _requested(parameters)
    given = _given_values(values, items)
    symbols = circuit.parameters
    unknown = [k for k, _ in items if k not in symbols]
    if unknown:
        raise BindingError(
            f"The circuit has no symbol(s) {unknown}; its symbols are {list(symbols)}."
        )
    unknown_values = [k for k in given if k not in symbols]
    if unknown_values:
        raise BindingError(
            f"values= names symbol(s) {unknown_values} that the circuit does not have; its "
            f"symbols are {list(symbols)}."
        )
    if not items:
        raise GradientError("parameters is empty; name at least one symbol to differentiate.")
    trainable = tuple(k for k, _ in items)
    point: list[float] = []
    defaulted: list[str] = []
    for k, v in items:
        if v is not None:
            point.append(v)
        elif k in given:
            point.append(given[k])
        else:
            defaulted.append(k)
            point.append(0.0)
    if defaulted:
        warnings.warn(
            f"No values given for {defaulted}; differentiating at 0.0 for them. Pass "
            "parameters={name: value} or values={name: value} to choose the point.",
            UserWarning,
            stacklevel=3,
        )
    fixed_names = [s for s in symbols if s not in set(trainable)]
    missing = [s for s in fixed_names if s not in given]
    if missing:
        raise UnboundParameterError(
            f"The circuit's symbol(s) {missing} are not being differentiated and have no "
            "values; pass them in values={name: value} (or add them to parameters)."
        )
    return trainable, point, {s: given[s] for s in fixed_names}


def _real(v: object, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (numbers.Real, np.ndarray)):
        raise BindingError(f"The value for {name!r} must be a real number, got {v!r}.")
    x = float(v)
    if not math.isfinite(x):
        raise NonFiniteParameterError(f"The value for {name!r} is {x}; it must be finite.")
    return x
