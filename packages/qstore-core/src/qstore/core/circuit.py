"""``UnifiedCircuit``: the framework-agnostic, parameterised circuit description.

>>> import qstore.core as qc
>>> c = qc.UnifiedCircuit(2)
>>> _ = c.add_gate("H", targets=[0]).add_gate("CNOT", targets=[0, 1])
>>> _ = c.add_gate("RY", targets=1, parameters={"theta": "w"})
>>> c.n_parameters, c.depth()
(1, 3)
"""

from __future__ import annotations

import numbers
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

import numpy as np
import numpy.typing as npt

from qstore.core.errors import (
    BindingError,
    CircuitError,
    GateArityError,
    ParameterError,
    QubitIndexError,
    UnboundParameterError,
)
from qstore.core.gates import GateSpec, GateType, canonical_name, get_gate
from qstore.core.parameters import Expression, Parameter, ParamLike, check_finite

if TYPE_CHECKING:
    import cirq
    import qiskit

ParametersArg = ParamLike | Sequence[ParamLike] | Mapping[str, ParamLike] | None

MAX_UNITARY_QUBITS = 12


@dataclass(frozen=True)
class Operation:
    """One gate (or a measurement) applied to specific qubits."""

    gate: str
    qubits: tuple[int, ...]
    params: tuple[Expression, ...] = ()
    key: str | None = None  # measurement key

    @property
    def spec(self) -> GateSpec:
        return get_gate(self.gate)

    @property
    def is_measurement(self) -> bool:
        return self.gate == "MEASURE"

    @property
    def is_parameterized(self) -> bool:
        return any(not p.is_constant for p in self.params)

    @property
    def symbols(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for p in self.params:
            for s in p.symbols:
                seen.setdefault(s, None)
        return tuple(seen)

    def numeric_params(self) -> tuple[float, ...]:
        """Parameter values; raises :class:`UnboundParameterError` if any is symbolic."""
        out = []
        for p in self.params:
            if not p.is_constant:
                raise UnboundParameterError(
                    f"Gate {self.gate} on qubits {list(self.qubits)} has unbound symbol(s) "
                    f"{list(p.symbols)}; call circuit.bind({{...}}) first."
                )
            out.append(p.constant)
        return tuple(out)

    def matrix(self) -> npt.NDArray[np.complex128]:
        return self.spec.matrix(self.numeric_params())

    def __str__(self) -> str:
        if self.is_measurement:
            return f"MEASURE{list(self.qubits)} -> {self.key!r}"
        ps = f"({', '.join(str(p) for p in self.params)})" if self.params else ""
        return f"{self.gate}{ps} {list(self.qubits)}"


def _as_qubit(q: Any, n_qubits: int, gate: str) -> int:
    if isinstance(q, bool) or not isinstance(q, numbers.Integral):
        raise QubitIndexError(
            f"Qubit index {q!r} for gate {gate} is not an integer; use 0 .. {n_qubits - 1}."
        )
    qi = int(q)
    if not 0 <= qi < n_qubits:
        raise QubitIndexError(
            f"Qubit index {qi} for gate {gate} is out of range for a {n_qubits}-qubit circuit; "
            f"use 0 .. {n_qubits - 1} or create the circuit with more qubits."
        )
    return qi


def _normalise_targets(targets: int | Iterable[int], n_qubits: int, gate: str) -> tuple[int, ...]:
    if isinstance(targets, numbers.Integral) and not isinstance(targets, bool):
        items: list[Any] = [targets]
    elif isinstance(targets, Iterable) and not isinstance(targets, (str, bytes)):
        items = list(targets)
    else:
        raise QubitIndexError(
            f"targets for gate {gate} must be an int or a list of ints, got {targets!r}."
        )
    qs = tuple(_as_qubit(q, n_qubits, gate) for q in items)
    if len(set(qs)) != len(qs):
        raise QubitIndexError(
            f"Gate {gate} got duplicate qubits {list(qs)}; each target must be a distinct qubit."
        )
    return qs


def _normalise_params(spec: GateSpec, parameters: ParametersArg) -> tuple[Expression, ...]:
    names = spec.param_names
    if parameters is None:
        values: list[ParamLike | None] = [None] * len(names)
    elif isinstance(parameters, Mapping):
        unknown = [k for k in parameters if k not in names]
        if unknown:
            raise GateArityError(
                f"Gate {spec.name} has no parameter(s) {unknown}; its parameters are "
                f"{list(names) or 'none'}."
            )
        values = [parameters.get(n) for n in names]
    elif isinstance(parameters, (str, Expression, numbers.Real)):
        values = [parameters]
    elif isinstance(parameters, (Sequence, np.ndarray)):
        values = list(parameters)
    else:
        raise ParameterError(
            f"parameters for gate {spec.name} must be a number, a symbol name, a list or a "
            f"dict {{name: value}}, not {type(parameters).__name__}."
        )
    if len(values) < len(names):
        values = values + [None] * (len(names) - len(values))
    if len(values) != len(names):
        raise GateArityError(
            f"Gate {spec.name} takes {len(names)} parameter(s) {list(names)}, got {len(values)}."
        )
    out = []
    for name, v, default in zip(names, values, spec.defaults, strict=True):
        if v is None:
            if default is None:
                raise GateArityError(
                    f"Gate {spec.name} needs a value for parameter {name!r} "
                    f"(a number or a symbol name), e.g. parameters={{{name!r}: 'theta'}}."
                )
            v = default
        if isinstance(v, np.generic):
            v = v.item()
        out.append(Expression.coerce(v))
    return tuple(out)


T = TypeVar("T")
_MISSING = object()


class UnifiedCircuit:
    """A parameterised quantum circuit on ``n_qubits`` qubits.

    Gates are appended with :meth:`add_gate`; symbols (strings or :class:`Parameter`) become
    trainable or bindable parameters. The circuit is the user's description; backends compile it
    once and then only bind numbers.
    """

    COMPILED_CACHE_SIZE: ClassVar[int] = 32
    """How many compiled artefacts :meth:`compiled` keeps per circuit (oldest dropped first)."""

    def __init__(self, n_qubits: int, name: str | None = None) -> None:
        if isinstance(n_qubits, bool) or not isinstance(n_qubits, numbers.Integral):
            raise CircuitError(f"n_qubits must be a positive int, got {n_qubits!r}.")
        if n_qubits < 1:
            raise CircuitError(f"n_qubits must be at least 1, got {n_qubits}.")
        self._n_qubits: int = int(n_qubits)
        self.name: str | None = name
        self._ops: list[Operation] = []
        # compiled artefacts of backends (see `compiled`), keyed by (owner, len(ops), ...)
        self._compiled: dict[tuple[object, ...], object] = {}

    # -- building ---------------------------------------------------------------------------
    @property
    def n_qubits(self) -> int:
        return self._n_qubits

    def compiled(self, key: tuple[object, ...], build: Callable[[], T]) -> T:
        """The artefact compiled from this circuit under ``key``, built by ``build`` once.

        The public cache that backends, plugins and gradients keep their compiled forms in (a
        ``Program``, a lowered template, shifted circuits), so a training step only binds
        numbers. ``key`` should start with an owner string (e.g. the distribution's import
        name) and hold everything else the artefact depends on (column layout, observables);
        the current number of operations is added to it, so appending gates never returns a
        stale artefact. At most :attr:`COMPILED_CACHE_SIZE` entries are kept.

        >>> c = UnifiedCircuit(1).add_gate("RX", 0, "t")
        >>> c.compiled(("doc", "n_params"), lambda: c.n_parameters)
        1
        """
        full = (len(self._ops), *key)
        hit = self._compiled.get(full, _MISSING)
        if hit is _MISSING:
            hit = build()
            if len(self._compiled) >= self.COMPILED_CACHE_SIZE:
                self._compiled.pop(next(iter(self._compiled)))
            self._compiled[full] = hit
        return cast(T, hit)

    @property
    def operations(self) -> tuple[Operation, ...]:
        return tuple(self._ops)

    def add_gate(
        self,
        gate: str | GateType,
        targets: int | Iterable[int],
        parameters: ParametersArg = None,
    ) -> UnifiedCircuit:
        """Append ``gate`` on ``targets`` (control first for controlled gates); returns ``self``.

        ``parameters`` is a number, a symbol name, an :class:`Expression`, a list in the
        gate's parameter order, or a dict keyed by the gate's parameter names.
        """
        name = canonical_name(gate)
        if name == "MEASURE":
            qs = _normalise_targets(targets, self._n_qubits, name)
            return self.measure(qs)
        spec = get_gate(name)
        qubits = _normalise_targets(targets, self._n_qubits, name)
        if len(qubits) != spec.n_qubits:
            raise GateArityError(
                f"Gate {name} acts on {spec.n_qubits} qubit(s) but got targets {list(qubits)}."
            )
        self._ops.append(Operation(name, qubits, _normalise_params(spec, parameters)))
        return self

    def append(self, operation: Operation) -> UnifiedCircuit:
        """Append an existing :class:`Operation` (validated against this circuit)."""
        if operation.is_measurement:
            return self.measure(operation.qubits, key=operation.key or "m")
        return self.add_gate(operation.gate, operation.qubits, list(operation.params))

    def measure(self, qubits: int | Iterable[int] | None = None, key: str = "m") -> UnifiedCircuit:
        """Measure ``qubits`` (all by default) in the computational basis under ``key``."""
        qs = (
            tuple(range(self._n_qubits))
            if qubits is None
            else _normalise_targets(qubits, self._n_qubits, "MEASURE")
        )
        self._ops.append(Operation("MEASURE", qs, (), key))
        return self

    def add_parameterized_layer(
        self, gate_type: str | GateType, param_name: str, qubits: Iterable[int] | None = None
    ) -> UnifiedCircuit:
        """One rotation per qubit with symbols ``f"{param_name}_{q}"``."""
        spec = get_gate(gate_type)
        if spec.n_qubits != 1 or spec.n_params != 1:
            raise GateArityError(
                f"add_parameterized_layer needs a one-qubit, one-parameter gate such as RX, RY, "
                f"RZ or P; {spec.name} has {spec.n_qubits} qubit(s), {spec.n_params} parameter(s)."
            )
        for q in range(self._n_qubits) if qubits is None else qubits:
            self.add_gate(spec.name, q, f"{param_name}_{q}")
        return self

    # -- parameters -------------------------------------------------------------------------
    @property
    def parameters(self) -> dict[str, Parameter]:
        """Symbols in order of first appearance, name -> :class:`Parameter`."""
        seen: dict[str, Parameter] = {}
        for op in self._ops:
            for s in op.symbols:
                if s not in seen:
                    seen[s] = Parameter(s)
        return seen

    @property
    def parameter_names(self) -> list[str]:
        return list(self.parameters)

    @property
    def n_parameters(self) -> int:
        return len(self.parameters)

    @property
    def is_parameterized(self) -> bool:
        return any(op.is_parameterized for op in self._ops)

    def bind(
        self,
        values: Mapping[Any, Any] | Sequence[float] | npt.ArrayLike,
        *,
        strict: bool = True,
    ) -> UnifiedCircuit:
        """A copy with symbols replaced by values (or expressions); partial binding is allowed.

        ``values`` is a dict keyed by symbol name (or :class:`Parameter`), or a sequence in
        the order of :attr:`parameters`. With ``strict=True`` unknown names are an error.
        """
        names = self.parameter_names
        if isinstance(values, Mapping):
            mapping: dict[str, ParamLike] = {}
            for k, v in values.items():
                key = k.name if isinstance(k, Parameter) else k
                if not isinstance(key, str):
                    raise BindingError(f"Binding keys must be symbol names, got {k!r}.")
                mapping[key] = v
            unknown = [k for k in mapping if k not in names]
            if unknown and strict:
                raise BindingError(
                    f"The circuit has no symbol(s) {unknown}; its symbols are {names}. "
                    "Pass strict=False to ignore extra names."
                )
        else:
            arr = np.asarray(values, dtype=float)
            if arr.ndim != 1 or arr.shape[0] != len(names):
                raise BindingError(
                    f"Expected {len(names)} values in the order {names}, got shape {arr.shape}."
                )
            mapping = dict(zip(names, arr.tolist(), strict=True))
        clean: dict[str, ParamLike] = {}
        for k, v in mapping.items():
            if isinstance(v, np.generic):
                v = v.item()
            if isinstance(v, numbers.Real) and not isinstance(v, bool):
                v = check_finite(float(v), f"symbol {k!r}")
            clean[k] = v
        out = UnifiedCircuit(self._n_qubits, self.name)
        out._ops = [
            Operation(op.gate, op.qubits, tuple(p.substitute(clean) for p in op.params), op.key)
            for op in self._ops
        ]
        return out

    # -- structure --------------------------------------------------------------------------
    def copy(self) -> UnifiedCircuit:
        out = UnifiedCircuit(self._n_qubits, self.name)
        out._ops = list(self._ops)
        return out

    def __len__(self) -> int:
        return len(self._ops)

    def __iter__(self) -> Iterator[Operation]:
        return iter(self._ops)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UnifiedCircuit):
            return NotImplemented
        return self._n_qubits == other._n_qubits and self._ops == other._ops

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (
            f"UnifiedCircuit(n_qubits={self._n_qubits}, operations={len(self._ops)}, "
            f"parameters={self.n_parameters})"
        )

    def __str__(self) -> str:
        head = f"UnifiedCircuit({self._n_qubits} qubits{', ' + self.name if self.name else ''})"
        return "\n".join([head, *(f"  {op}" for op in self._ops)])

    def compose(self, other: UnifiedCircuit, qubits: Sequence[int] | None = None) -> UnifiedCircuit:
        """A new circuit: ``self`` followed by ``other`` (mapped onto ``qubits`` if given)."""
        if qubits is None:
            if other.n_qubits > self._n_qubits:
                raise CircuitError(
                    f"Cannot append a {other.n_qubits}-qubit circuit to a {self._n_qubits}-qubit "
                    "one without a qubit map; pass qubits=[...]."
                )
            qmap = list(range(other.n_qubits))
        else:
            qmap = list(_normalise_targets(qubits, self._n_qubits, "compose"))
            if len(qmap) != other.n_qubits:
                raise CircuitError(
                    f"qubits has {len(qmap)} entries but the circuit has {other.n_qubits} qubits."
                )
        out = self.copy()
        for op in other:
            out._ops.append(
                Operation(op.gate, tuple(qmap[q] for q in op.qubits), op.params, op.key)
            )
        return out

    def __add__(self, other: UnifiedCircuit) -> UnifiedCircuit:
        return self.compose(other)

    def inverse(self) -> UnifiedCircuit:
        """The adjoint circuit (gates reversed and inverted). Measurements cannot be inverted."""
        out = UnifiedCircuit(self._n_qubits, f"{self.name}_inverse" if self.name else None)
        for op in reversed(self._ops):
            if op.is_measurement:
                raise CircuitError("A circuit with measurements has no inverse; remove them.")
            name, params = op.spec.inverse(op.params)
            out._ops.append(
                Operation(name, op.qubits, tuple(Expression.coerce(p) for p in params))  # type: ignore[arg-type]
            )
        return out

    def depth(self) -> int:
        """Number of layers when each gate starts as early as its qubits allow."""
        level = [0] * self._n_qubits
        for op in self._ops:
            d = max(level[q] for q in op.qubits) + 1
            for q in op.qubits:
                level[q] = d
        return max(level, default=0)

    def gate_counts(self) -> dict[str, int]:
        """How many times each gate occurs, e.g. ``{'H': 2, 'CNOT': 1}``."""
        return dict(Counter(op.gate for op in self._ops))

    @property
    def n_two_qubit_gates(self) -> int:
        return sum(1 for op in self._ops if not op.is_measurement and len(op.qubits) >= 2)

    @property
    def has_measurements(self) -> bool:
        return any(op.is_measurement for op in self._ops)

    def without_measurements(self) -> UnifiedCircuit:
        out = UnifiedCircuit(self._n_qubits, self.name)
        out._ops = [op for op in self._ops if not op.is_measurement]
        return out

    # -- numbers ----------------------------------------------------------------------------
    def unitary(
        self, values: Mapping[str, float] | Sequence[float] | None = None
    ) -> npt.NDArray[np.complex128]:
        """The ``2^n x 2^n`` unitary (qubit 0 most significant); measurements are ignored."""
        circ = self if values is None else self.bind(values)
        n = self._n_qubits
        if n > MAX_UNITARY_QUBITS:
            raise CircuitError(
                f"unitary() is limited to {MAX_UNITARY_QUBITS} qubits (the matrix would have "
                f"4^{n} entries); simulate states with a backend instead."
            )
        dim = 1 << n
        u = np.eye(dim, dtype=complex).reshape([2] * n + [dim])
        for op in circ:
            if op.is_measurement:
                continue
            k = len(op.qubits)
            m = op.matrix().reshape([2] * (2 * k))
            u = np.tensordot(m, u, axes=(list(range(k, 2 * k)), list(op.qubits)))
            u = np.moveaxis(u, list(range(k)), list(op.qubits))
        return u.reshape(dim, dim)

    # -- conversions ------------------------------------------------------------------------
    def to_cirq(self, qubits: Sequence[Any] | None = None) -> cirq.Circuit:
        """Convert to a ``cirq.Circuit`` (symbols become sympy symbols). Needs ``[cirq]``."""
        from qstore.core.convert.cirq import to_cirq

        return to_cirq(self, qubits)

    @classmethod
    def from_cirq(
        cls, circuit: cirq.Circuit, qubit_order: Sequence[Any] | None = None
    ) -> UnifiedCircuit:
        """Convert a ``cirq.Circuit``; ``qubit_order[i]`` becomes qubit ``i``. Needs ``[cirq]``."""
        from qstore.core.convert.cirq import from_cirq

        return from_cirq(circuit, qubit_order)

    def to_qiskit(self) -> qiskit.QuantumCircuit:
        """Convert to a qiskit ``QuantumCircuit`` (qubit order handled). Needs ``[qiskit]``."""
        from qstore.core.convert.qiskit import to_qiskit

        return to_qiskit(self)

    @classmethod
    def from_qiskit(cls, circuit: qiskit.QuantumCircuit) -> UnifiedCircuit:
        from qstore.core.convert.qiskit import from_qiskit

        return from_qiskit(circuit)

    def to_json(self, indent: int | None = None) -> str:
        """Serialise to the versioned JSON schema (exact round trip)."""
        from qstore.core.convert.json_schema import to_json

        return to_json(self, indent=indent)

    @classmethod
    def from_json(cls, data: str | bytes | Mapping[str, Any]) -> UnifiedCircuit:
        from qstore.core.convert.json_schema import from_json

        return from_json(data)

    def to_qasm(self, *, symbolic: bool = False) -> str:
        """OpenQASM 2.0 text of a bound circuit (``symbolic=True``: symbols written by name, see
        :mod:`qstore.core.convert.qasm`)."""
        from qstore.core.convert.qasm import to_qasm

        return to_qasm(self, symbolic=symbolic)

    @classmethod
    def from_qasm(cls, text: str) -> UnifiedCircuit:
        """Read an OpenQASM 2.0 program (``qelib1.inc`` gates, ``measure``; see
        :func:`qstore.core.convert.qasm.from_qasm`).

        >>> c = UnifiedCircuit(2).add_gate("H", 0).add_gate("CNOT", [0, 1])
        >>> UnifiedCircuit.from_qasm(c.to_qasm()) == c
        True
        """
        from qstore.core.convert.qasm import from_qasm

        return from_qasm(text)

    def to_ionq_json(
        self, gateset: str = "qis", optimize: bool = True, target: str | None = None
    ) -> dict[str, Any]:
        """The circuit in IonQ's JSON format, ``gateset`` ``'qis'`` or ``'native'``.

        ``optimize`` simplifies the circuit first; ``target`` (e.g. ``'qpu.forte-1'``) picks
        the native gates that target has. Provided by the qstore-ionq distribution; without it
        this raises :class:`~qstore.core.errors.MissingDependencyError` saying what to install.
        """
        from qstore.core.backends.registry import plugin_class

        convert = plugin_class(
            "circuit_to_ionq_json",
            "qstore.ionq",
            "qstore-ionq",
            what=f"UnifiedCircuit.to_ionq_json(gateset={gateset!r})",
        )
        return cast(
            "dict[str, Any]", convert(self, gateset=gateset, optimize=optimize, target=target)
        )

    def to_ionq_native(self, optimize: bool = True, target: str | None = None) -> dict[str, Any]:
        """The circuit compiled to IonQ's native gates, in IonQ's JSON format.

        Same as ``to_ionq_json(gateset='native')``; needs the qstore-ionq distribution.
        """
        return self.to_ionq_json(gateset="native", optimize=optimize, target=target)

    def optimize(self, target_backend: str = "auto") -> UnifiedCircuit:
        """A simplified copy with the same unitary (see :mod:`qstore.core.optimize`)."""
        from qstore.core.optimize import optimize

        return optimize(self, target_backend=target_backend)
