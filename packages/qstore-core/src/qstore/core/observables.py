"""Observables: Pauli strings and weighted sums of them.

>>> import qstore.core as qc
>>> obs = 0.5 * qc.Z(0) * qc.Z(1) + qc.X(2)
>>> obs.n_terms
2

Qubit 0 is the most significant bit of a basis-state index, as everywhere in Q-Store. Cirq
``PauliString``/``PauliSum`` objects and qiskit ``SparsePauliOp``/``Pauli`` (whose labels are
little-endian: the rightmost letter is qubit 0) are converted with :func:`as_observable`; a list
like ``[cirq.Z] * n`` means ``Z`` on qubit ``i`` for the ``i``-th entry.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from qstore.core.errors import ObservableError

_PAULI_PRODUCT: dict[tuple[str, str], tuple[complex, str]] = {
    ("X", "X"): (1, "I"),
    ("Y", "Y"): (1, "I"),
    ("Z", "Z"): (1, "I"),
    ("X", "Y"): (1j, "Z"),
    ("Y", "X"): (-1j, "Z"),
    ("Y", "Z"): (1j, "X"),
    ("Z", "Y"): (-1j, "X"),
    ("Z", "X"): (1j, "Y"),
    ("X", "Z"): (-1j, "Y"),
}
_PAULI_MATRICES = {
    "I": np.eye(2, dtype=complex),
    "X": np.array([[0, 1], [1, 0]], dtype=complex),
    "Y": np.array([[0, -1j], [1j, 0]], dtype=complex),
    "Z": np.array([[1, 0], [0, -1]], dtype=complex),
}


def _check_qubit(q: Any) -> int:
    if isinstance(q, bool) or not isinstance(q, numbers.Integral) or int(q) < 0:
        raise ObservableError(f"Pauli qubit index must be a non-negative int, got {q!r}.")
    return int(q)


@dataclass(frozen=True)
class PauliString:
    """``coeff * P_a(q_a) * P_b(q_b) * ...`` with at most one Pauli per qubit."""

    paulis: tuple[tuple[int, str], ...] = ()  # sorted by qubit, letters X/Y/Z
    coeff: complex = 1.0

    @staticmethod
    def from_dict(paulis: Mapping[int, str], coeff: complex = 1.0) -> PauliString:
        items = []
        for q, p in paulis.items():
            letter = str(p).upper()
            if letter not in "IXYZ" or len(letter) != 1:
                raise ObservableError(f"Unknown Pauli {p!r} on qubit {q}; use 'X', 'Y' or 'Z'.")
            if letter != "I":
                items.append((_check_qubit(q), letter))
        return PauliString(tuple(sorted(items)), complex(coeff))

    @property
    def qubits(self) -> tuple[int, ...]:
        return tuple(q for q, _ in self.paulis)

    @property
    def max_qubit(self) -> int:
        return max(self.qubits, default=-1)

    def as_dict(self) -> dict[int, str]:
        return dict(self.paulis)

    def __mul__(self, other: Any) -> PauliString | PauliSum:
        if isinstance(other, PauliString):
            d = self.as_dict()
            coeff = self.coeff * other.coeff
            for q, p in other.paulis:
                if q in d:
                    phase, r = _PAULI_PRODUCT[(d[q], p)]
                    coeff *= phase
                    if r == "I":
                        del d[q]
                    else:
                        d[q] = r
                else:
                    d[q] = p
            return PauliString.from_dict(d, coeff)
        if isinstance(other, PauliSum):
            return PauliSum((self,)) * other
        if isinstance(other, numbers.Number):
            return PauliString(self.paulis, self.coeff * complex(other))  # type: ignore[call-overload]
        return NotImplemented

    def __rmul__(self, other: Any) -> PauliString:
        if isinstance(other, numbers.Number):
            return PauliString(self.paulis, self.coeff * complex(other))  # type: ignore[call-overload]
        return NotImplemented

    def __add__(self, other: Any) -> PauliSum:
        return PauliSum((self,)) + _as_sum(other)

    __radd__ = __add__

    def __neg__(self) -> PauliString:
        return PauliString(self.paulis, -self.coeff)

    def __sub__(self, other: Any) -> PauliSum:
        return PauliSum((self,)) + (-1.0) * _as_sum(other)

    def __rsub__(self, other: Any) -> PauliSum:
        return _as_sum(other) + (-self)

    def label(self, n_qubits: int) -> str:
        """Big-endian label, e.g. ``'ZIX'`` for Z on qubit 0 and X on qubit 2."""
        d = self.as_dict()
        return "".join(d.get(q, "I") for q in range(n_qubits))

    def __str__(self) -> str:
        body = "*".join(f"{p}({q})" for q, p in self.paulis) or "I"
        c = self.coeff
        if c == 1:
            return body
        cs = f"{c.real:g}" if c.imag == 0 else f"({c:g})"
        return f"{cs}*{body}"


def _as_sum(x: Any) -> PauliSum:
    if isinstance(x, PauliSum):
        return x
    if isinstance(x, PauliString):
        return PauliSum((x,))
    if isinstance(x, numbers.Number):
        return PauliSum((PauliString((), complex(x)),))  # type: ignore[call-overload]
    raise ObservableError(f"Cannot combine an observable with {x!r}.")


@dataclass(frozen=True)
class PauliSum:
    """A weighted sum of Pauli strings (the general observable)."""

    terms: tuple[PauliString, ...] = ()

    def simplify(self) -> PauliSum:
        acc: dict[tuple[tuple[int, str], ...], complex] = {}
        for t in self.terms:
            acc[t.paulis] = acc.get(t.paulis, 0) + t.coeff
        return PauliSum(tuple(PauliString(k, c) for k, c in acc.items() if abs(c) > 1e-15))

    @property
    def n_terms(self) -> int:
        return len(self.terms)

    @property
    def max_qubit(self) -> int:
        return max((t.max_qubit for t in self.terms), default=-1)

    @property
    def is_hermitian(self) -> bool:
        return all(abs(t.coeff.imag) < 1e-12 for t in self.simplify().terms)

    def __add__(self, other: Any) -> PauliSum:
        return PauliSum(self.terms + _as_sum(other).terms).simplify()

    __radd__ = __add__

    def __sub__(self, other: Any) -> PauliSum:
        return self + (-1.0) * _as_sum(other)

    def __rsub__(self, other: Any) -> PauliSum:
        return _as_sum(other) + (-1.0) * self

    def __neg__(self) -> PauliSum:
        return (-1.0) * self

    def __mul__(self, other: Any) -> PauliSum:
        if isinstance(other, numbers.Number):
            return PauliSum(tuple(other * t for t in self.terms))
        o = _as_sum(other)
        out: list[PauliString] = []
        for a in self.terms:
            for b in o.terms:
                prod = a * b
                assert isinstance(prod, PauliString)
                out.append(prod)
        return PauliSum(tuple(out)).simplify()

    def __rmul__(self, other: Any) -> PauliSum:
        if isinstance(other, numbers.Number):
            return PauliSum(tuple(other * t for t in self.terms))
        return NotImplemented

    def matrix(self, n_qubits: int) -> npt.NDArray[np.complex128]:
        """Dense matrix (small ``n_qubits`` only), qubit 0 most significant."""
        if self.max_qubit >= n_qubits:
            raise ObservableError(
                f"The observable acts on qubit {self.max_qubit} but n_qubits is {n_qubits}."
            )
        dim = 1 << n_qubits
        out = np.zeros((dim, dim), dtype=complex)
        for t in self.terms:
            d = t.as_dict()
            m = np.ones((1, 1), dtype=complex)
            for q in range(n_qubits):
                m = np.kron(m, _PAULI_MATRICES[d.get(q, "I")])
            out += t.coeff * m
        return out

    def __str__(self) -> str:
        return " + ".join(str(t) for t in self.terms) or "0"


Observable = PauliString | PauliSum


def X(qubit: int) -> PauliString:  # noqa: N802 - physics notation
    """Pauli X on ``qubit``."""
    return PauliString(((_check_qubit(qubit), "X"),))


def Y(qubit: int) -> PauliString:  # noqa: N802
    """Pauli Y on ``qubit``."""
    return PauliString(((_check_qubit(qubit), "Y"),))


def Z(qubit: int) -> PauliString:  # noqa: N802
    """Pauli Z on ``qubit``."""
    return PauliString(((_check_qubit(qubit), "Z"),))


def identity(coeff: float = 1.0) -> PauliString:
    return PauliString((), complex(coeff))


def from_label(label: str, coeff: complex = 1.0) -> PauliString:
    """Big-endian label: ``'ZIX'`` is Z on qubit 0 and X on qubit 2."""
    return PauliString.from_dict(dict(enumerate(label)), coeff)


def _cirq_qubit_index(q: Any, qubit_map: Mapping[Any, int] | None) -> int:
    if qubit_map is not None:
        if q not in qubit_map:
            raise ObservableError(f"Qubit {q!r} is not in the qubit map {dict(qubit_map)}.")
        return int(qubit_map[q])
    x = getattr(q, "x", None)
    if isinstance(x, int) and not hasattr(q, "row"):
        return x  # LineQubit
    raise ObservableError(
        f"Cannot tell the index of Cirq qubit {q!r}; use cirq.LineQubit or pass qubit_map."
    )


def _from_cirq(obj: Any, index: int | None, qubit_map: Mapping[Any, int] | None) -> PauliSum:
    import cirq  # only reached when a Cirq object was passed

    if isinstance(obj, cirq.Pauli):  # cirq.X, cirq.Y, cirq.Z used as gates: [cirq.Z] * n
        if index is None:
            raise ObservableError(
                f"{obj!r} names a Pauli without a qubit; use it in a list ([cirq.Z] * n means "
                "Z on qubit i for entry i) or write cirq.Z(q)."
            )
        return _as_sum(PauliString(((index, str(obj)[-1].upper()),)))
    if isinstance(obj, cirq.GateOperation) and isinstance(obj.gate, cirq.Pauli):
        obj = cirq.PauliString(obj)
    if isinstance(obj, cirq.PauliString):
        d = {_cirq_qubit_index(q, qubit_map): str(p)[-1].upper() for q, p in obj.items()}
        return _as_sum(PauliString.from_dict(d, complex(obj.coefficient)))
    if isinstance(obj, cirq.PauliSum):
        return PauliSum(
            tuple(t for ps in obj for t in _from_cirq(ps, index, qubit_map).terms)
        ).simplify()
    raise ObservableError(f"Unsupported Cirq observable {obj!r}.")


def _from_qiskit(obj: Any) -> PauliSum:
    from qiskit.quantum_info import Pauli, SparsePauliOp

    if isinstance(obj, Pauli):
        obj = SparsePauliOp(obj)
    if isinstance(obj, SparsePauliOp):
        terms = []
        for label, coeff in zip(obj.paulis.to_labels(), obj.coeffs, strict=True):
            phase = 1.0 + 0j
            if label.startswith("-i"):
                phase, label = -1j, label[2:]
            elif label.startswith("i"):
                phase, label = 1j, label[1:]
            elif label.startswith("-"):
                phase, label = -1.0, label[1:]
            terms.append(from_label(label[::-1], complex(coeff) * phase))  # little-endian
        return PauliSum(tuple(terms)).simplify()
    raise ObservableError(f"Unsupported qiskit observable {obj!r}.")


def as_observable(
    obj: Any,
    n_qubits: int | None = None,
    index: int | None = None,
    qubit_map: Mapping[Any, int] | None = None,
) -> PauliSum:
    """Normalise any supported observable form to a :class:`PauliSum`.

    Accepted: :class:`PauliString`, :class:`PauliSum`, a big-endian label string (``'ZZI'``),
    Cirq ``Pauli``/``PauliString``/``PauliSum`` and qiskit ``Pauli``/``SparsePauliOp``.
    """
    if isinstance(obj, PauliSum):
        out = obj
    elif isinstance(obj, PauliString):
        out = PauliSum((obj,))
    elif isinstance(obj, str):
        if index is not None and len(obj) == 1:
            out = _as_sum(PauliString.from_dict({index: obj}))
        else:
            out = _as_sum(from_label(obj))
    else:
        mod = type(obj).__module__.split(".")[0]
        if mod == "cirq":
            out = _from_cirq(obj, index, qubit_map)
        elif mod == "qiskit":
            out = _from_qiskit(obj)
        else:
            raise ObservableError(
                f"Unsupported observable {obj!r} (type {type(obj).__name__}); use qc.Z(0), a "
                "PauliSum, a label like 'ZZI', cirq.Z / cirq.PauliSum or qiskit SparsePauliOp."
            )
    if n_qubits is not None and out.max_qubit >= n_qubits:
        raise ObservableError(
            f"Observable {out} acts on qubit {out.max_qubit}, but the circuit has only "
            f"{n_qubits} qubits (0 .. {n_qubits - 1})."
        )
    if not out.is_hermitian:
        raise ObservableError(
            f"Observable {out} is not Hermitian (a coefficient has an imaginary part); "
            "expectation values need real coefficients."
        )
    return out


_Z_EACH: dict[int, tuple[PauliSum, ...]] = {}


def _z_each(n_qubits: int) -> tuple[PauliSum, ...]:
    """``Z`` on every qubit, built once per register size (the default observables of every
    call)."""
    hit = _Z_EACH.get(n_qubits)
    if hit is None:
        hit = _Z_EACH[n_qubits] = tuple(PauliSum((Z(q),)) for q in range(n_qubits))
    return hit


def as_observables(
    spec: Any, n_qubits: int, qubit_map: Mapping[Any, int] | None = None
) -> list[PauliSum]:
    """Normalise a list of observables; ``None`` means ``Z`` on every qubit.

    A single observable gives a one-element list; ``[cirq.Z] * n`` gives ``Z`` on qubit ``i``
    for entry ``i``.
    """
    if spec is None:
        return list(_z_each(n_qubits))
    if isinstance(spec, (str, PauliString, PauliSum)) or not isinstance(spec, (Sequence, Iterable)):
        return [as_observable(spec, n_qubits, None, qubit_map)]
    if type(spec).__module__.split(".")[0] in ("cirq", "qiskit"):
        return [as_observable(spec, n_qubits, None, qubit_map)]
    items = list(spec)
    if not items:
        raise ObservableError("The observable list is empty; give at least one observable.")
    return [as_observable(o, n_qubits, i, qubit_map) for i, o in enumerate(items)]
