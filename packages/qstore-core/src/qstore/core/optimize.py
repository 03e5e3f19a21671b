"""Peephole optimisation of circuits: drop identities, cancel inverse pairs, merge rotations.

:func:`optimize` returns a new circuit whose ``unitary()`` is *exactly* the input's, global phase
included, for every value of every symbol. Rewrites that are right only up to a global phase
(``RX(2*pi) = -I``, ``X = i*RX(pi)``, ``RZ(a) = exp(-i a/2) P(a)``) are never made.

Rules, applied in one forward sweep that is repeated until nothing changes:

* **identities** — ``I``, and any gate whose (constant) matrix is the identity to 1e-12:
  ``RX/RY/RZ/RXX/RYY/RZZ/ZZ/CRX/CRY/CRZ`` and ``MS`` at an angle that is a multiple of 4*pi,
  ``P`` at a multiple of 2*pi, ``U3(theta, phi, lambda)`` with ``theta`` a multiple of 4*pi and
  ``phi + lambda`` a multiple of 2*pi (``phi`` and ``lambda`` may be symbols that cancel).
* **inverse pairs** — two gates on the same qubits whose product is the identity: ``H H``,
  ``S SDG``, ``CZ(0,1) CZ(1,0)``, ``CCX`` with swapped controls, ``U3(t,p,l) U3(-t,-l,-p)``,
  ``GPI2(f) GPI2(f+pi)``, any two constant gates whose product is the identity ...
* **rotation merging** — ``RX RX``, ``RY RY``, ``RZ RZ``, ``P P``, ``RXX/RYY/RZZ/ZZ`` pairs (in
  either qubit order), ``CRX/CRY/CRZ`` with the same control and target, and ``MS`` with equal
  phases: the angles add as expressions (``RX(a) RX(b) -> RX(a + b)``), and the result is checked
  for identity again. ``P`` also absorbs ``Z, S, SDG, T, TDG`` (which are ``P`` at fixed angles).
* **fixed-gate fusion** — two non-parametrised gates whose product is exactly a gate of the table
  become that gate (``S S -> Z``, ``T T -> S``, ``SX SX -> X``, ``Z S -> SDG``).

Two gates are *adjacent* when every gate between them that shares a qubit with the later one
commutes with it. Commutation is decided per shared qubit from the gate table: gates commute when,
on each qubit they share, both commute with the same Pauli (Z for diagonal gates and controls, X
for ``X/RX/SX`` and ``CNOT``/``CCX`` targets, Y for ``Y/RY``). So ``RZ(a) CZ RZ(b)`` merges and
``CNOT(0,1) X(2) CNOT(0,1)`` cancels, while ``CNOT(0,1) CNOT(1,0)`` stays. Measurements commute
with nothing: they are barriers on their qubits.

``target_backend``:

* ``'auto'`` (default) and the simulator backends (``'local'``, ``'local_cpu'``, ``'qsim'``,
  ``'lightning'``, ``'lightning.gpu'``, ``'lightning.kokkos'``): every rule above.
* ``'ionq'``, ``'ionq_simulator'``, ``'ionq_hardware'``: the IonQ native gates ``GPI, GPI2, MS,
  ZZ`` are left exactly as written (never dropped, merged or cancelled; a compiled native circuit
  goes to the device unchanged). Other gates may still commute past them and are optimised.

>>> import qstore.core as qc
>>> c = qc.UnifiedCircuit(2).add_gate("H", 0).add_gate("H", 0).add_gate("RX", 1, "a")
>>> _ = c.add_gate("RX", 1, "b")
>>> [str(op) for op in optimize(c)]
['RX(a + b) [1]']
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from qstore.core.circuit import Operation, UnifiedCircuit
from qstore.core.errors import CircuitError
from qstore.core.gates import GATES
from qstore.core.parameters import Expression

__all__ = ["OptimizationReport", "optimization_report", "optimize"]

logger = logging.getLogger(__name__)

CArray = npt.NDArray[np.complex128]

# Entry-wise tolerance for "this matrix is the identity / this gate". Far below any physical
# effect and below the 1e-10 to which the tests compare unitaries.
_ATOL = 1e-12

# How many earlier gates on the same qubits the sweep looks past (through commuting gates) for a
# partner. Bounds the cost on long runs of mutually commuting gates.
_MAX_LOOKBACK = 256

_IONQ_NATIVE = frozenset({"GPI", "GPI2", "MS", "ZZ"})

# target_backend -> the gates left untouched.
_TARGETS: dict[str, frozenset[str]] = {
    "auto": frozenset(),
    "local": frozenset(),
    "local_cpu": frozenset(),
    "qsim": frozenset(),
    "lightning": frozenset(),
    "lightning.gpu": frozenset(),
    "lightning.kokkos": frozenset(),
    "ionq": _IONQ_NATIVE,
    "ionq_simulator": _IONQ_NATIVE,
    "ionq_hardware": _IONQ_NATIVE,
}

# Gates with an angle that adds: G(.., a, ..) G(.., b, ..) = G(.., a + b, ..) when the other
# parameters are equal. All but P are exp(-i theta K / 2) with K^2 = 1 (K depends on MS's
# phases); P is diag(1, e^{i theta}). Value: index of that angle.
_ADDITIVE: dict[str, int] = {
    "RX": 0,
    "RY": 0,
    "RZ": 0,
    "P": 0,
    "CRX": 0,
    "CRY": 0,
    "CRZ": 0,
    "RXX": 0,
    "RYY": 0,
    "RZZ": 0,
    "ZZ": 0,
    "MS": 2,
}

_PAULIS: dict[str, CArray] = {
    "X": np.array([[0, 1], [1, 0]], dtype=complex),
    "Y": np.array([[0, -1j], [1j, 0]], dtype=complex),
    "Z": np.array([[1, 0], [0, -1]], dtype=complex),
}

Replacement = tuple[Operation, ...]


# ---------------------------------------------------------------------------------------------
# facts about gates, derived once from the gate table


def _reorder(m: CArray, qubits: Sequence[int], order: Sequence[int]) -> CArray:
    """``m`` acts on ``qubits`` (first = most significant); the same operator on ``order``."""
    k = len(qubits)
    if tuple(qubits) == tuple(order):
        return m
    perm = [list(qubits).index(q) for q in order]
    t = m.reshape([2] * (2 * k)).transpose(perm + [k + p for p in perm])
    out: CArray = t.reshape(1 << k, 1 << k)
    return out


def _is_eye(m: CArray) -> bool:
    return bool(np.max(np.abs(m - np.eye(m.shape[-1]))) < _ATOL)


@functools.cache
def _symmetries(gate: str) -> tuple[tuple[int, ...], ...]:
    """Qubit permutations ``s`` with ``G`` on ``(q[s[0]], q[s[1]], ...)`` == ``G`` on ``q``, for
    every parameter value (checked on each Fourier coefficient). CZ, SWAP, RZZ: both orders;
    CCX: the two controls."""
    spec = GATES[gate]
    k = spec.n_qubits
    ident = tuple(range(k))
    return tuple(
        s
        for s in itertools.permutations(range(k))
        if all(np.allclose(_reorder(c, s, ident), c, atol=_ATOL) for _, c in spec.fourier)
    )


@functools.cache
def _commuting_paulis(gate: str) -> tuple[frozenset[str], ...]:
    """For each qubit of ``gate``: the Paulis on that qubit it commutes with at every parameter
    value, i.e. the single-qubit bases in which it is block-diagonal there."""
    spec = GATES[gate]
    k = spec.n_qubits
    out = []
    for i in range(k):
        found = set()
        for name, pauli in _PAULIS.items():
            full = np.kron(np.kron(np.eye(1 << i), pauli), np.eye(1 << (k - 1 - i)))
            if all(np.allclose(c @ full, full @ c, atol=_ATOL) for _, c in spec.fourier):
                found.add(name)
        out.append(frozenset(found))
    return tuple(out)


@functools.cache
def _fixed_phase_angles() -> dict[str, float]:
    """Fixed one-qubit gates that are exactly ``P(angle)``: Z, S, SDG, T, TDG (and I)."""
    out = {}
    for name, spec in GATES.items():
        if spec.n_qubits == 1 and not spec.is_parameterized and spec.is_diagonal:
            m = spec.matrix()
            if abs(m[0, 0] - 1.0) < _ATOL:
                out[name] = float(np.angle(m[1, 1]))
    return out


@functools.cache
def _fixed_is_identity(gate: str) -> bool:
    return _is_eye(GATES[gate].matrix())


@functools.cache
def _fixed_product(
    first: str, second: str, perm: tuple[int, ...]
) -> tuple[tuple[str, tuple[int, ...]], ...] | None:
    """Two fixed gates, ``second`` on ``first``'s qubits taken in order ``perm``.

    Returns ``()`` when the product is the identity, ``((gate, positions),)`` when it is exactly
    one fixed gate of the table on ``first``'s qubits at ``positions``, ``None`` otherwise."""
    k = GATES[first].n_qubits
    ident = tuple(range(k))
    prod = _reorder(GATES[second].matrix(), perm, ident) @ GATES[first].matrix()
    if _is_eye(prod):
        return ()
    for name, spec in GATES.items():
        if spec.n_qubits != k or spec.is_parameterized:
            continue
        for s in itertools.permutations(range(k)):
            if np.allclose(_reorder(spec.matrix(), s, ident), prod, atol=_ATOL, rtol=0.0):
                return ((name, s),)
    return None


# ---------------------------------------------------------------------------------------------
# the rules


def _as_expr(value: object) -> Expression:
    if isinstance(value, Expression):
        return value
    if isinstance(value, (int, float)):
        return Expression.coerce(value)
    raise CircuitError(f"Gate parameter {value!r} is neither a number nor an Expression.")


def _same(a: Expression, b: Expression) -> bool:
    d = a - b
    return d.is_constant and abs(d.constant) < _ATOL


def _aligned(first: Operation, second: Operation) -> bool:
    """Whether ``second`` (same gate name) acts on ``first``'s qubits as the same operator."""
    return any(second.qubits == tuple(first.qubits[i] for i in s) for s in _symmetries(second.gate))


def _is_identity(op: Operation) -> bool:
    """Whether ``op`` is the identity for every value of its symbols."""
    if op.is_measurement:
        return False
    spec = op.spec
    if not spec.is_parameterized:
        return _fixed_is_identity(op.gate)
    if op.gate == "U3":
        # With sin(theta/2) = 0 the matrix depends on phi + lambda only; otherwise it has
        # nonzero off-diagonal entries and is not the identity for any phi, lambda.
        theta, phi, lam = op.params
        total = phi + lam
        if not (theta.is_constant and total.is_constant):
            return False
        return _is_eye(spec.matrix((theta.constant, 0.0, total.constant)))
    index = _ADDITIVE.get(op.gate)
    if index is not None and op.params[index].is_constant:
        # exp(-i theta K / 2) with K^2 = 1 is the identity exactly when cos(theta/2) = 1,
        # whatever the other parameters (MS phases) that K depends on; P has none.
        values = [0.0] * len(op.params)
        values[index] = op.params[index].constant
        return _is_eye(spec.matrix(values))
    if op.is_parameterized:
        return False
    return _is_eye(op.matrix())


def _phase_angle(op: Operation) -> Expression | None:
    if op.gate == "P":
        return op.params[0]
    angle = _fixed_phase_angles().get(op.gate)
    return None if angle is None else Expression.coerce(angle)


def _merge_rotations(first: Operation, second: Operation) -> Operation | None:
    if "P" in (first.gate, second.gate) and len(first.qubits) == 1:
        a, b = _phase_angle(first), _phase_angle(second)
        if a is not None and b is not None:
            return Operation("P", first.qubits, (a + b,))
    index = _ADDITIVE.get(first.gate)
    if index is None or second.gate != first.gate or not _aligned(first, second):
        return None
    if not all(
        _same(x, y)
        for i, (x, y) in enumerate(zip(first.params, second.params, strict=True))
        if i != index
    ):
        return None
    params = list(first.params)
    params[index] = first.params[index] + second.params[index]
    return Operation(first.gate, first.qubits, tuple(params))


def _combine(first: Operation, second: Operation, frozen: frozenset[str]) -> Replacement | None:
    """What ``first`` then ``second`` (on the same set of qubits) can be replaced by, if anything.

    The replacement acts on ``first``'s qubits and has exactly the product's unitary."""
    if first.is_measurement or second.is_measurement:
        return None
    if first.gate in frozen or second.gate in frozen:
        return None
    spec_1, spec_2 = first.spec, second.spec
    if not spec_1.is_parameterized and not spec_2.is_parameterized:
        perm = tuple(first.qubits.index(q) for q in second.qubits)
        fused = _fixed_product(first.gate, second.gate, perm)
        if fused is None:
            return None
        return tuple(
            Operation(name, tuple(first.qubits[i] for i in positions)) for name, positions in fused
        )

    merged = _merge_rotations(first, second)
    if merged is not None:
        return () if _is_identity(merged) else (merged,)

    inv_name, inv_params = spec_1.inverse(first.params)
    if (
        second.gate == inv_name
        and _aligned(first, second)
        and all(_same(_as_expr(x), y) for x, y in zip(inv_params, second.params, strict=True))
    ):
        return ()

    if not first.is_parameterized and not second.is_parameterized:
        prod = _reorder(second.matrix(), second.qubits, first.qubits) @ first.matrix()
        if _is_eye(prod):
            return ()
    return None


def _commute(a: Operation, b: Operation) -> bool:
    """Sufficient test: on every shared qubit both gates commute with one common Pauli."""
    if a.is_measurement or b.is_measurement:
        return not set(a.qubits) & set(b.qubits)
    pa, pb = _commuting_paulis(a.gate), _commuting_paulis(b.gate)
    for i, q in enumerate(a.qubits):
        if q in b.qubits and not pa[i] & pb[b.qubits.index(q)]:
            return False
    return True


# ---------------------------------------------------------------------------------------------
# the sweep


class _Sweep:
    """One forward pass: each gate looks back for a partner along its qubits."""

    def __init__(self, n_qubits: int, frozen: frozenset[str]) -> None:
        self.frozen = frozen
        self.out: list[Operation | None] = []
        self.on_qubit: list[list[int]] = [[] for _ in range(n_qubits)]  # indices into out
        self.changed = False

    def push(self, op: Operation) -> None:
        if op.gate not in self.frozen and _is_identity(op):
            self.changed = True
            return
        if self._absorb(op):
            self.changed = True
            return
        index = len(self.out)
        self.out.append(op)
        for q in op.qubits:
            self.on_qubit[q].append(index)

    def _absorb(self, op: Operation) -> bool:
        """Combine ``op`` with the nearest earlier gate it can reach; whether it did."""
        lists = [self.on_qubit[q] for q in op.qubits]
        pos = [len(lst) - 1 for lst in lists]
        wanted = set(op.qubits)
        for _ in range(_MAX_LOOKBACK):
            # The next earlier gate sharing a qubit with op.
            index = max((lst[p] for lst, p in zip(lists, pos, strict=True) if p >= 0), default=-1)
            if index < 0:
                return False
            for j, lst in enumerate(lists):
                if pos[j] >= 0 and lst[pos[j]] == index:
                    pos[j] -= 1
            earlier = self.out[index]
            assert earlier is not None  # removed gates are unlisted
            if set(earlier.qubits) == wanted:
                replacement = _combine(earlier, op, self.frozen)
                if replacement is not None:
                    self._replace(index, replacement)
                    return True
            if not _commute(earlier, op):
                return False
        return False

    def _replace(self, index: int, replacement: Replacement) -> None:
        if replacement:
            (self.out[index],) = replacement  # same qubit set: the lists stay valid
            return
        removed = self.out[index]
        assert removed is not None
        for q in removed.qubits:
            self.on_qubit[q].remove(index)
        self.out[index] = None

    def result(self) -> list[Operation]:
        return [op for op in self.out if op is not None]


def _check_target(target_backend: object) -> frozenset[str]:
    key = target_backend.strip().lower() if isinstance(target_backend, str) else None
    if key is None or key not in _TARGETS:
        raise CircuitError(
            f"optimize(): unknown target_backend {target_backend!r}; use one of "
            f"{', '.join(repr(t) for t in _TARGETS)}."
        )
    return _TARGETS[key]


def optimize(circuit: UnifiedCircuit, target_backend: str = "auto") -> UnifiedCircuit:
    """A simplified copy of ``circuit`` with exactly the same unitary (global phase included).

    Drops identities, cancels inverse pairs and merges rotations (see the module docstring for the
    rules and the ``target_backend`` values); symbolic parameters are kept symbolic. The input is
    not modified, and the gate count never increases.

    >>> import qstore.core as qc
    >>> c = qc.UnifiedCircuit(3).add_gate("CNOT", [0, 1]).add_gate("X", 2)
    >>> [str(op) for op in optimize(c.add_gate("CNOT", [0, 1]))]
    ['X [2]']
    """
    frozen = _check_target(target_backend)
    if not isinstance(circuit, UnifiedCircuit):
        raise CircuitError(
            f"optimize() needs a qstore.core.UnifiedCircuit, got {type(circuit).__name__}."
        )
    ops = list(circuit.operations)
    passes = 0
    while True:
        passes += 1
        sweep = _Sweep(circuit.n_qubits, frozen)
        for op in ops:
            sweep.push(op)
        ops = sweep.result()
        if not sweep.changed:
            break
    logger.debug(
        "optimize(%s): %d -> %d operations in %d passes",
        target_backend,
        len(circuit),
        len(ops),
        passes,
    )
    out = circuit.copy()  # keeps the name
    out._ops = ops
    return out


# ---------------------------------------------------------------------------------------------
# reporting


@dataclass(frozen=True)
class OptimizationReport:
    """Gate counts and depth before and after an optimisation (plain data, readable ``str``)."""

    gates_before: int
    gates_after: int
    two_qubit_before: int
    two_qubit_after: int
    depth_before: int
    depth_after: int
    counts_before: tuple[tuple[str, int], ...]
    counts_after: tuple[tuple[str, int], ...]

    @property
    def gates_removed(self) -> int:
        return self.gates_before - self.gates_after

    @property
    def reduction(self) -> float:
        """Fraction of gates removed (0.0 for an empty circuit)."""
        return self.gates_removed / self.gates_before if self.gates_before else 0.0

    def __str__(self) -> str:
        lines = [
            f"gates {self.gates_before} -> {self.gates_after} "
            f"(-{self.gates_removed}, {100.0 * self.reduction:.1f}%), "
            f"two-qubit {self.two_qubit_before} -> {self.two_qubit_after}, "
            f"depth {self.depth_before} -> {self.depth_after}"
        ]
        before, after = dict(self.counts_before), dict(self.counts_after)
        names = sorted(set(before) | set(after))
        width = max((len(n) for n in names), default=0)
        lines += [f"  {n:<{width}}  {before.get(n, 0)} -> {after.get(n, 0)}" for n in names]
        return "\n".join(lines)


def optimization_report(before: UnifiedCircuit, after: UnifiedCircuit) -> OptimizationReport:
    """Compare two circuits, typically ``c`` and ``optimize(c)``. Measurements are not gates.

    >>> import qstore.core as qc
    >>> c = qc.UnifiedCircuit(1).add_gate("H", 0).add_gate("H", 0)
    >>> print(optimization_report(c, optimize(c)))
    gates 2 -> 0 (-2, 100.0%), two-qubit 0 -> 0, depth 2 -> 0
      H  2 -> 0
    """

    def counts(c: UnifiedCircuit) -> tuple[tuple[str, int], ...]:
        return tuple(sorted((g, n) for g, n in c.gate_counts().items() if g != "MEASURE"))

    cb, ca = counts(before), counts(after)
    return OptimizationReport(
        gates_before=sum(n for _, n in cb),
        gates_after=sum(n for _, n in ca),
        two_qubit_before=before.n_two_qubit_gates,
        two_qubit_after=after.n_two_qubit_gates,
        depth_before=before.depth(),
        depth_after=after.depth(),
        counts_before=cb,
        counts_after=ca,
    )
