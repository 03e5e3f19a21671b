"""Cirq gate classes used by :mod:`qstore.core.convert.cirq` (imported only when Cirq is there).

Two kinds:

* Angle-keeping subclasses of Cirq's own eigen-gates (:class:`PhaseGate`, :class:`XXRotation`,
  :class:`YYRotation`, :class:`ZZRotation`), in the style of ``cirq.Rz``: they *are* a
  ``cirq.ZPowGate``/``cirq.XXPowGate``... for every simulator and optimiser, and they remember
  the angle in radians so that ``IR -> Cirq -> IR`` gives back the exact float (``t / pi * pi``
  is not always ``t``).
* :class:`QStoreGate` for gates without a Cirq counterpart (U3 and the IonQ natives GPI, GPI2,
  MS, ZZ): it carries the Q-Store gate name and parameters, has an exact ``_unitary_`` and
  decomposes into standard Cirq gates (also with symbolic parameters), so every Cirq simulator
  can run it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import cirq
import numpy as np
import sympy

from qstore.core.gates import get_gate


def _repr(value: Any) -> str:
    if isinstance(value, sympy.Basic):
        return f"sympy.parse_expr({str(value)!r})"
    return repr(value)


def _pi(value: Any) -> Any:
    return sympy.pi if cirq.is_parameterized(value) else np.pi


class PhaseGate(cirq.ZPowGate):
    """``P(rads) = diag(1, e^{i rads})``, i.e. ``cirq.ZPowGate(exponent=rads / pi)``."""

    def __init__(self, *, rads: Any) -> None:
        self._rads = rads
        super().__init__(exponent=rads / _pi(rads))

    @property
    def rads(self) -> Any:
        return self._rads

    def _with_exponent(self, exponent: Any) -> PhaseGate:
        return PhaseGate(rads=exponent * _pi(exponent))

    def _circuit_diagram_info_(self, args: Any) -> str:
        return f"P({self._format_exponent_as_angle(args)})"

    def __str__(self) -> str:
        return f"P({self._rads})"

    def __repr__(self) -> str:
        return f"qstore.core.convert.cirq.PhaseGate(rads={_repr(self._rads)})"


class _RotationMixin:
    """``exp(-i rads P P / 2)`` for a two-qubit Pauli product, remembering ``rads``.

    Mixed into a ``cirq.XXPowGate``/``YYPowGate``/``ZZPowGate`` with ``global_shift=-0.5``.
    """

    _label = ""
    _rads: Any

    def __init__(self, *, rads: Any) -> None:
        self._rads = rads
        super().__init__(exponent=rads / _pi(rads), global_shift=-0.5)  # type: ignore[call-arg]

    def _with_exponent(self, exponent: Any) -> Any:
        return type(self)(rads=exponent * _pi(exponent))

    def _circuit_diagram_info_(self, args: Any) -> Any:
        angle = self._format_exponent_as_angle(args)  # type: ignore[attr-defined]
        symbol = f"{self._label}({angle})"
        return cirq.CircuitDiagramInfo(wire_symbols=(symbol, symbol))

    @property
    def rads(self) -> Any:
        return self._rads

    def __str__(self) -> str:
        return f"{self._label}({self._rads})"

    def __repr__(self) -> str:
        return f"qstore.core.convert.cirq.{type(self).__name__}(rads={_repr(self._rads)})"


class XXRotation(_RotationMixin, cirq.XXPowGate):
    """``RXX(rads) = exp(-i rads X X / 2)``, a ``cirq.XXPowGate`` with ``global_shift=-0.5``."""

    _label = "Rxx"


class YYRotation(_RotationMixin, cirq.YYPowGate):
    """``RYY(rads) = exp(-i rads Y Y / 2)``, a ``cirq.YYPowGate`` with ``global_shift=-0.5``."""

    _label = "Ryy"


class ZZRotation(_RotationMixin, cirq.ZZPowGate):
    """``RZZ(rads) = exp(-i rads Z Z / 2)``, a ``cirq.ZZPowGate`` with ``global_shift=-0.5``."""

    _label = "Rzz"


def _as_number(value: Any) -> Any:
    """A resolved parameter as ``float``; symbolic values unchanged."""
    if cirq.is_parameterized(value):
        return value
    return float(value)


class QStoreGate(cirq.Gate):
    """A Q-Store gate with no exact Cirq counterpart (U3, GPI, GPI2, MS, ZZ), in radians.

    >>> import cirq
    >>> g = QStoreGate("GPI", [0.0])
    >>> bool(np.allclose(cirq.unitary(g), cirq.unitary(cirq.X)))
    True
    """

    def __init__(self, name: str, params: Sequence[Any]) -> None:
        spec = get_gate(name)
        if len(params) != spec.n_params:
            raise ValueError(f"{spec.name} takes {spec.n_params} parameter(s), got {len(params)}.")
        self._name = spec.name
        self._params = tuple(_as_number(p) for p in params)

    @property
    def name(self) -> str:
        return self._name

    @property
    def params(self) -> tuple[Any, ...]:
        return self._params

    def _num_qubits_(self) -> int:
        return get_gate(self._name).n_qubits

    def _is_parameterized_(self) -> bool:
        return any(cirq.is_parameterized(p) for p in self._params)

    def _parameter_names_(self) -> set[str]:
        names: set[str] = set()
        for p in self._params:
            names |= set(cirq.parameter_names(p))
        return names

    def _resolve_parameters_(self, resolver: Any, recursive: bool) -> QStoreGate:
        return QStoreGate(self._name, [resolver.value_of(p, recursive) for p in self._params])

    def _has_unitary_(self) -> bool:
        return not self._is_parameterized_()

    def _unitary_(self) -> Any:
        if self._is_parameterized_():
            return NotImplemented
        return get_gate(self._name).matrix([float(p) for p in self._params])

    def _decompose_(self, qubits: Sequence[Any]) -> Iterator[Any]:
        # Exact decompositions (no global phase) into standard Cirq gates; see conventions.md.
        p = self._params
        if self._name == "U3":  # U3(t, f, l) = P(f) RY(t) P(l)
            (q,) = qubits
            yield PhaseGate(rads=p[2]).on(q)
            yield cirq.ry(p[0]).on(q)
            yield PhaseGate(rads=p[1]).on(q)
        elif self._name == "GPI":  # GPI(f) = RZ(f) X RZ(-f)
            (q,) = qubits
            yield cirq.rz(-p[0]).on(q)
            yield cirq.X(q)
            yield cirq.rz(p[0]).on(q)
        elif self._name == "GPI2":  # GPI2(f) = RZ(f) RX(pi/2) RZ(-f)
            (q,) = qubits
            yield cirq.rz(-p[0]).on(q)
            yield cirq.rx(math.pi / 2).on(q)
            yield cirq.rz(p[0]).on(q)
        elif self._name == "MS":  # MS(f0, f1, t) = (RZ(f0) x RZ(f1)) RXX(t) (RZ(-f0) x RZ(-f1))
            a, b = qubits
            yield cirq.rz(-p[0]).on(a)
            yield cirq.rz(-p[1]).on(b)
            yield XXRotation(rads=p[2]).on(a, b)
            yield cirq.rz(p[0]).on(a)
            yield cirq.rz(p[1]).on(b)
        elif self._name == "ZZ":  # ZZ(t) = RZZ(t)
            a, b = qubits
            yield ZZRotation(rads=p[0]).on(a, b)
        else:  # pragma: no cover - only the gates above are built by to_cirq
            raise NotImplementedError(self._name)

    def __pow__(self, power: Any) -> Any:
        if power == 1:
            return self
        if power == -1:
            name, params = get_gate(self._name).inverse(self._params)
            return QStoreGate(name, list(params))
        return NotImplemented

    def _circuit_diagram_info_(self, args: Any) -> Any:
        values = ", ".join(args.format_radians(p) for p in self._params)
        label = f"{self._name}({values})"
        n = self._num_qubits_()
        return cirq.CircuitDiagramInfo(wire_symbols=(label, *(f"#{i + 1}" for i in range(1, n))))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QStoreGate):
            return NotImplemented
        return self._name == other._name and self._params == other._params

    def __hash__(self) -> int:
        return hash((QStoreGate, self._name, self._params))

    def __str__(self) -> str:
        return f"{self._name}({', '.join(str(p) for p in self._params)})"

    def __repr__(self) -> str:
        params = ", ".join(_repr(p) for p in self._params)
        return f"qstore.core.convert.cirq.QStoreGate({self._name!r}, [{params}])"
