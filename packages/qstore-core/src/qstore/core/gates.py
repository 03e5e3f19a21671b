"""The gate table: names, aliases, arity, parameters, matrices, Fourier data and inverses.

Conventions (see ``docs/conventions.md``):

* Qubit 0 is the most significant bit of a basis-state index (Cirq's order). For a two-qubit gate
  on ``targets=[a, b]`` the 4x4 matrix acts on ``|a b>`` with ``a`` the most significant bit; for
  controlled gates the control comes first.
* Angles are radians, including the IonQ native gates GPI, GPI2, MS and ZZ, whose IonQ
  documentation writes phases in *turns* (1 turn = 2*pi rad). ``qstore.ionq`` converts at the
  boundary; a phase ``phi`` here equals ``phi / (2*pi)`` turns there.
* Matrices are exact, with no hidden global phase: ``RX(t) = exp(-i t X / 2)``,
  ``P(l) = diag(1, e^{i l})``, ``U3`` as in OpenQASM/Qiskit, ``SX = sqrt(X)`` with
  ``SX = [[1+i, 1-i], [1-i, 1+i]] / 2``.

Every parametrised gate is also stored in *Fourier form*,
``M(theta) = sum_j C_j exp(i a_j . theta / 2)`` with integer vectors ``a_j``. That one
representation gives exact derivatives (for the adjoint method), the frequencies of any
expectation value in each parameter (for exact parameter-shift rules), and a matrix builder that
works with any array library.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from qstore.core.errors import UnknownGateError

CArray = npt.NDArray[np.complex128]
FArray = npt.NDArray[np.float64]

_S2 = 1.0 / math.sqrt(2.0)
_I2 = np.eye(2, dtype=complex)
_X = np.array([[0, 1], [1, 0]], dtype=complex)
_Y = np.array([[0, -1j], [1j, 0]], dtype=complex)
_Z = np.array([[1, 0], [0, -1]], dtype=complex)
_P0 = np.diag([1.0, 0.0]).astype(complex)
_P1 = np.diag([0.0, 1.0]).astype(complex)


class GateType(str, enum.Enum):
    """Canonical gate names. ``GateType.RY == 'RY'`` so strings and members mix freely."""

    I = "I"  # noqa: E741
    H = "H"
    X = "X"
    Y = "Y"
    Z = "Z"
    S = "S"
    SDG = "SDG"
    T = "T"
    TDG = "TDG"
    SX = "SX"
    SXDG = "SXDG"
    RX = "RX"
    RY = "RY"
    RZ = "RZ"
    P = "P"
    U3 = "U3"
    CNOT = "CNOT"
    CZ = "CZ"
    SWAP = "SWAP"
    CRX = "CRX"
    CRY = "CRY"
    CRZ = "CRZ"
    RXX = "RXX"
    RYY = "RYY"
    RZZ = "RZZ"
    CCX = "CCX"
    GPI = "GPI"
    GPI2 = "GPI2"
    MS = "MS"
    ZZ = "ZZ"
    MEASURE = "MEASURE"

    def __str__(self) -> str:
        return self.value


MatrixFn = Callable[[FArray], CArray]


@dataclass(frozen=True)
class GateSpec:
    """Everything the library knows about one gate.

    ``matrix_fn`` takes parameters of shape ``[..., n_params]`` and returns ``[..., d, d]``.
    """

    name: str
    n_qubits: int
    param_names: tuple[str, ...]
    matrix_fn: MatrixFn
    aliases: tuple[str, ...] = ()
    defaults: tuple[float | None, ...] = ()
    description: str = ""
    inverse_rule: Callable[[tuple[object, ...]], tuple[str, tuple[object, ...]]] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def n_params(self) -> int:
        return len(self.param_names)

    @property
    def dim(self) -> int:
        return 1 << self.n_qubits

    @property
    def is_parameterized(self) -> bool:
        return bool(self.param_names)

    def matrix(self, params: npt.ArrayLike = ()) -> CArray:
        """The unitary for concrete parameters (shape ``[..., d, d]`` for batched ones)."""
        p = np.asarray(params, dtype=float)
        if self.n_params == 0:
            return self.matrix_fn(p)
        if p.ndim == 0:
            p = p[None]
        return self.matrix_fn(p)

    @cached_property
    def fourier(self) -> tuple[tuple[tuple[int, ...], CArray], ...]:
        """Terms ``(a, C)`` with ``M(theta) = sum C exp(i a . theta / 2)``, exact to 1e-12."""
        k = self.n_params
        if k == 0:
            return (((), self.matrix_fn(np.zeros(0))),)
        n = 8  # half-angle frequencies |a| <= 3 are resolved without aliasing; we use |a| <= 2
        grid = np.arange(n) * (4.0 * math.pi / n)
        mesh = np.stack(np.meshgrid(*([grid] * k), indexing="ij"), axis=-1)  # [n]*k + [k]
        samples = self.matrix_fn(mesh)  # [n]*k + [d, d]
        coeffs = np.fft.fftn(samples, axes=tuple(range(k))) / n**k
        terms = []
        for idx in np.ndindex(*([n] * k)):
            c = coeffs[idx]
            if np.max(np.abs(c)) < 1e-12:
                continue
            a = tuple(int(i if i < n // 2 else i - n) for i in idx)
            c = np.where(np.abs(c) < 1e-14, 0.0, c)
            terms.append((a, np.round(c.real, 15) + 1j * np.round(c.imag, 15)))
        return tuple(terms)

    @cached_property
    def is_diagonal(self) -> bool:
        return all(np.allclose(c, np.diag(np.diag(c))) for _, c in self.fourier)

    @cached_property
    def permutation(self) -> tuple[npt.NDArray[np.intp], CArray] | None:
        """For a fixed gate that maps basis states to basis states: ``(perm, phases)`` with
        ``M[perm[j], j] = phases[j]``; ``None`` otherwise."""
        if self.is_parameterized or self.name == "MEASURE":
            return None
        m = self.matrix()
        nz = np.abs(m) > 1e-12
        if not (nz.sum(axis=0) == 1).all():
            return None
        perm = np.argmax(nz, axis=0)
        return perm, m[perm, np.arange(m.shape[1])]

    def frequencies(self, index: int) -> tuple[float, ...]:
        """Distinct positive frequencies of any expectation value in parameter ``index``."""
        half = sorted({a[index] for a, _ in self.fourier})
        freqs = {abs(x - y) / 2.0 for x in half for y in half if x != y}
        return tuple(sorted(freqs))

    @cached_property
    def log_derivatives(self) -> tuple[CArray | None, ...]:
        """Per parameter: ``dM/dtheta_i @ M^dagger`` when it does not depend on the parameters
        (``-i/2 P`` for a Pauli rotation ``exp(-i theta P / 2)``), else ``None``. The adjoint
        gradient then needs no derivative matrix for that parameter."""
        if not self.is_parameterized:
            return ()
        rng = np.random.default_rng(12345)
        points = rng.uniform(-math.pi, math.pi, (3, self.n_params))
        out: list[CArray | None] = []
        for i in range(self.n_params):
            logs = [self.derivative(p, i) @ np.conj(self.matrix_fn(p)).T for p in points]
            same = all(np.allclose(x, logs[0], atol=1e-12) for x in logs[1:])
            out.append(np.round(logs[0], 15) if same else None)
        return tuple(out)

    def derivative(self, params: npt.ArrayLike, index: int) -> CArray:
        """``dM/dtheta_index`` at ``params`` (``[..., k]``), from the Fourier form."""
        p = np.asarray(params, dtype=float)
        out: CArray | None = None
        for a, c in self.fourier:
            if a[index] == 0:
                continue
            phase = np.exp(0.5j * (p @ np.asarray(a, dtype=float)))
            term = (0.5j * a[index]) * phase[..., None, None] * c
            out = term if out is None else out + term
        assert out is not None
        return out

    def inverse(self, params: tuple[object, ...]) -> tuple[str, tuple[object, ...]]:
        """Name and parameters of the inverse gate (parameters may be expressions)."""
        if self.inverse_rule is None:
            return self.name, params
        return self.inverse_rule(params)


# ---------------------------------------------------------------------------------------------
# matrix builders (numpy, broadcasting over leading axes)


def _fixed(m: npt.ArrayLike) -> MatrixFn:
    arr = np.asarray(m, dtype=complex)

    def fn(p: FArray) -> CArray:
        return arr.copy()

    return fn


def axis_rotation(axis: str, theta: npt.ArrayLike, dtype: Any = np.complex128) -> CArray:
    """``exp(-i theta/2 P)`` for ``P`` = ``"X"``, ``"Y"`` or ``"Z"``, ``[..., 2, 2]`` for angles
    ``[...]``, written entry by entry in ``dtype`` (no complex128 temporaries to convert: the
    matrices of RX, RY and RZ, and what the NumPy engine builds every step).

    >>> axis_rotation("Y", np.pi).round(12).real.tolist()
    [[0.0, -1.0], [1.0, 0.0]]
    """
    half = np.asarray(theta) * 0.5  # float32 angles stay float32 (complex64 matrices)
    c, s = np.cos(half), np.sin(half)
    out = np.empty((*half.shape, 2, 2), dtype=dtype)
    if axis == "X":
        out[..., 0, 0] = c
        out[..., 1, 1] = c
        out[..., 0, 1] = -1j * s
        out[..., 1, 0] = -1j * s
    elif axis == "Y":
        out[..., 0, 0] = c
        out[..., 1, 1] = c
        out[..., 0, 1] = -s
        out[..., 1, 0] = s
    elif axis == "Z":
        out[..., 0, 1] = 0.0
        out[..., 1, 0] = 0.0
        out[..., 0, 0] = c - 1j * s
        out[..., 1, 1] = c + 1j * s
    else:
        raise ValueError(f"axis must be 'X', 'Y' or 'Z', got {axis!r}.")
    return out


#: The single-qubit rotation gates and their axes (their matrices: :func:`axis_rotation`).
ROTATION_AXES = {"RX": "X", "RY": "Y", "RZ": "Z"}


def _axis_rotation(axis: str) -> MatrixFn:
    def fn(p: FArray) -> CArray:
        return axis_rotation(axis, p[..., 0])

    return fn


def _pauli_rotation(pauli: CArray) -> MatrixFn:
    d = pauli.shape[0]
    eye = np.eye(d, dtype=complex)

    def fn(p: FArray) -> CArray:
        t = p[..., 0][..., None, None]
        return np.cos(t / 2) * eye - 1j * np.sin(t / 2) * pauli

    return fn


def _controlled(inner: MatrixFn) -> MatrixFn:
    def fn(p: FArray) -> CArray:
        u = inner(p)
        out = np.zeros((*u.shape[:-2], 4, 4), dtype=complex)
        out[..., 0, 0] = 1.0
        out[..., 1, 1] = 1.0
        out[..., 2:, 2:] = u
        return out

    return fn


def _phase(p: FArray) -> CArray:
    lam = p[..., 0]
    out = np.zeros((*lam.shape, 2, 2), dtype=complex)
    out[..., 0, 0] = 1.0
    out[..., 1, 1] = np.exp(1j * lam)
    return out


def _u3(p: FArray) -> CArray:
    t, ph, lam = p[..., 0], p[..., 1], p[..., 2]
    c, s = np.cos(t / 2), np.sin(t / 2)
    out = np.empty((*t.shape, 2, 2), dtype=complex)
    out[..., 0, 0] = c
    out[..., 0, 1] = -np.exp(1j * lam) * s
    out[..., 1, 0] = np.exp(1j * ph) * s
    out[..., 1, 1] = np.exp(1j * (ph + lam)) * c
    return out


def _gpi(p: FArray) -> CArray:
    phi = p[..., 0]
    out = np.zeros((*phi.shape, 2, 2), dtype=complex)
    out[..., 0, 1] = np.exp(-1j * phi)
    out[..., 1, 0] = np.exp(1j * phi)
    return out


def _gpi2(p: FArray) -> CArray:
    phi = p[..., 0]
    out = np.empty((*phi.shape, 2, 2), dtype=complex)
    out[..., 0, 0] = _S2
    out[..., 1, 1] = _S2
    out[..., 0, 1] = -1j * np.exp(-1j * phi) * _S2
    out[..., 1, 0] = -1j * np.exp(1j * phi) * _S2
    return out


def _ms(p: FArray) -> CArray:
    # IonQ's Molmer-Sorensen gate with phases in radians; theta = pi/2 is fully entangling
    # (IonQ's default of 0.25 turns).
    p0, p1, t = p[..., 0], p[..., 1], p[..., 2]
    c, s = np.cos(t / 2), np.sin(t / 2)
    out = np.zeros((*t.shape, 4, 4), dtype=complex)
    for i in range(4):
        out[..., i, i] = c
    out[..., 0, 3] = -1j * np.exp(-1j * (p0 + p1)) * s
    out[..., 1, 2] = -1j * np.exp(-1j * (p0 - p1)) * s
    out[..., 2, 1] = -1j * np.exp(1j * (p0 - p1)) * s
    out[..., 3, 0] = -1j * np.exp(1j * (p0 + p1)) * s
    return out


def _neg_all(params: tuple[object, ...]) -> tuple[object, ...]:
    return tuple(-p for p in params)  # type: ignore[operator]


def _rule_same_name_neg(
    name: str,
) -> Callable[[tuple[object, ...]], tuple[str, tuple[object, ...]]]:
    return lambda params: (name, _neg_all(params))


def _rule_rename(name: str) -> Callable[[tuple[object, ...]], tuple[str, tuple[object, ...]]]:
    return lambda params: (name, params)


def _u3_inverse(params: tuple[object, ...]) -> tuple[str, tuple[object, ...]]:
    t, ph, lam = params
    return "U3", (-t, -lam, -ph)  # type: ignore[operator]


def _gpi2_inverse(params: tuple[object, ...]) -> tuple[str, tuple[object, ...]]:
    return "GPI2", (params[0] + math.pi,)  # type: ignore[operator]


def _ms_inverse(params: tuple[object, ...]) -> tuple[str, tuple[object, ...]]:
    p0, p1, t = params
    return "MS", (p0, p1, -t)  # type: ignore[operator]


_CNOT = np.eye(4)[[0, 1, 3, 2]]
_SWAP = np.eye(4)[[0, 2, 1, 3]]
_CCX = np.eye(8)[[0, 1, 2, 3, 4, 5, 7, 6]]
_SX = np.array([[1 + 1j, 1 - 1j], [1 - 1j, 1 + 1j]]) / 2


def _spec(
    name: str,
    n_qubits: int,
    params: tuple[str, ...],
    fn: MatrixFn,
    aliases: tuple[str, ...] = (),
    inverse: Callable[[tuple[object, ...]], tuple[str, tuple[object, ...]]] | None = None,
    defaults: tuple[float | None, ...] = (),
    description: str = "",
) -> GateSpec:
    return GateSpec(
        name=name,
        n_qubits=n_qubits,
        param_names=params,
        matrix_fn=fn,
        aliases=aliases,
        defaults=defaults or (None,) * len(params),
        description=description,
        inverse_rule=inverse,
    )


_SPECS: tuple[GateSpec, ...] = (
    _spec("I", 1, (), _fixed(_I2), ("ID", "IDENTITY"), description="identity"),
    _spec("H", 1, (), _fixed(np.array([[1, 1], [1, -1]]) * _S2), ("HADAMARD",)),
    _spec("X", 1, (), _fixed(_X), ("NOT", "PAULIX")),
    _spec("Y", 1, (), _fixed(_Y), ("PAULIY",)),
    _spec("Z", 1, (), _fixed(_Z), ("PAULIZ",)),
    _spec("S", 1, (), _fixed(np.diag([1, 1j])), inverse=_rule_rename("SDG")),
    _spec("SDG", 1, (), _fixed(np.diag([1, -1j])), ("SDAG", "SDAGGER"), _rule_rename("S")),
    _spec("T", 1, (), _fixed(np.diag([1, np.exp(1j * math.pi / 4)])), inverse=_rule_rename("TDG")),
    _spec(
        "TDG",
        1,
        (),
        _fixed(np.diag([1, np.exp(-1j * math.pi / 4)])),
        ("TDAG", "TDAGGER"),
        _rule_rename("T"),
    ),
    _spec("SX", 1, (), _fixed(_SX), ("SQRTX", "V"), _rule_rename("SXDG")),
    _spec("SXDG", 1, (), _fixed(_SX.conj().T), ("SQRTXDG", "VDG"), _rule_rename("SX")),
    _spec("RX", 1, ("theta",), _axis_rotation("X"), inverse=_rule_same_name_neg("RX")),
    _spec("RY", 1, ("theta",), _axis_rotation("Y"), inverse=_rule_same_name_neg("RY")),
    _spec("RZ", 1, ("theta",), _axis_rotation("Z"), inverse=_rule_same_name_neg("RZ")),
    _spec("P", 1, ("theta",), _phase, ("PHASE", "U1", "PHASESHIFT"), _rule_same_name_neg("P")),
    _spec("U3", 1, ("theta", "phi", "lambda"), _u3, ("U",), _u3_inverse),
    _spec("CNOT", 2, (), _fixed(_CNOT), ("CX",)),
    _spec("CZ", 2, (), _fixed(np.diag([1, 1, 1, -1]))),
    _spec("SWAP", 2, (), _fixed(_SWAP)),
    _spec("CRX", 2, ("theta",), _controlled(_axis_rotation("X")), (), _rule_same_name_neg("CRX")),
    _spec("CRY", 2, ("theta",), _controlled(_axis_rotation("Y")), (), _rule_same_name_neg("CRY")),
    _spec("CRZ", 2, ("theta",), _controlled(_axis_rotation("Z")), (), _rule_same_name_neg("CRZ")),
    _spec("RXX", 2, ("theta",), _pauli_rotation(np.kron(_X, _X)), (), _rule_same_name_neg("RXX")),
    _spec("RYY", 2, ("theta",), _pauli_rotation(np.kron(_Y, _Y)), (), _rule_same_name_neg("RYY")),
    _spec("RZZ", 2, ("theta",), _pauli_rotation(np.kron(_Z, _Z)), (), _rule_same_name_neg("RZZ")),
    _spec("CCX", 3, (), _fixed(_CCX), ("TOFFOLI", "CCNOT")),
    _spec("GPI", 1, ("phi",), _gpi, description="IonQ native GPI (phase in radians)"),
    _spec("GPI2", 1, ("phi",), _gpi2, (), _gpi2_inverse, description="IonQ native GPI2"),
    _spec(
        "MS",
        2,
        ("phi0", "phi1", "theta"),
        _ms,
        (),
        _ms_inverse,
        defaults=(None, None, math.pi / 2),
        description="IonQ native Molmer-Sorensen (phases in radians; theta=pi/2 fully entangling)",
    ),
    _spec(
        "ZZ",
        2,
        ("theta",),
        _pauli_rotation(np.kron(_Z, _Z)),
        (),
        _rule_same_name_neg("ZZ"),
        description="IonQ native ZZ = exp(-i theta Z Z / 2) (theta in radians)",
    ),
)

GATES: dict[str, GateSpec] = {s.name: s for s in _SPECS}
_LOOKUP: dict[str, str] = {}
for _s in _SPECS:
    _LOOKUP[_s.name] = _s.name
    for _a in _s.aliases:
        _LOOKUP[_a] = _s.name

SELF_INVERSE = frozenset(
    n for n, s in GATES.items() if not s.is_parameterized and s.inverse_rule is None
)


def canonical_name(gate: str | GateType) -> str:
    """Resolve a gate name or alias (case-insensitive) to its canonical name."""
    if isinstance(gate, GateType):
        return gate.value
    if not isinstance(gate, str):
        raise UnknownGateError(
            f"A gate must be a name (str) or qstore.core.GateType, not {type(gate).__name__}."
        )
    key = gate.strip().upper().replace("-", "").replace(" ", "")
    if key in ("MEASURE", "M", "MEASUREMENT"):
        return "MEASURE"
    try:
        return _LOOKUP[key]
    except KeyError:
        known = ", ".join(sorted(GATES))
        raise UnknownGateError(f"Unknown gate {gate!r}. Known gates: {known}.") from None


def get_gate(gate: str | GateType) -> GateSpec:
    """Look up a gate by name, alias or :class:`GateType`.

    >>> get_gate("cx").name
    'CNOT'
    """
    name = canonical_name(gate)
    if name == "MEASURE":
        raise UnknownGateError("MEASURE is not a unitary gate; use UnifiedCircuit.measure().")
    return GATES[name]
