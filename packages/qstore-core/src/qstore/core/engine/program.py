"""Compilation of a circuit template into a :class:`Program`.

A program is built once per (circuit, column layout, observables) and reused for every batch:
gate parameters become index maps into the binding matrix, runs of single-qubit gates are fused
into per-qubit blocks grouped into *layers* (applied chunk-wise as small dense matrices),
consecutive multi-qubit permutation gates (CNOT chains, SWAPs, Toffolis) become one gather, and
constant multi-qubit diagonal gates one phase vector. Observables become, for every distinct
bit-flip mask, a matrix ``C_f[x, o]`` so that ``<psi|O_o|psi> = Re sum_x conj(psi[x ^ f]) C_f[x, o]
psi[x]`` -- one gather and one matmul per mask for all observables at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from qstore.core.circuit import UnifiedCircuit
from qstore.core.engine.binding import ParameterMap
from qstore.core.errors import CircuitError
from qstore.core.gates import GATES, GateSpec
from qstore.core.observables import PauliSum

IntArray = npt.NDArray[np.intp]
FloatArray = npt.NDArray[np.float64]
CArray = npt.NDArray[np.complex128]


@dataclass
class GateRef:
    """One gate occurrence inside the program."""

    spec: GateSpec
    qubits: tuple[int, ...]
    params: tuple[int, ...]  # indices into the gate-parameter vector theta (or constants below)
    batched: bool
    const_matrix: CArray | None  # for gates without symbolic parameters
    index: int = -1  # position in Program.refs


@dataclass
class Block:
    """A fused run of single-qubit gates on one qubit (applied first to last)."""

    qubit: int
    gates: list[GateRef]

    @property
    def batched(self) -> bool:
        return any(g.batched for g in self.gates)

    @property
    def parameterized(self) -> bool:
        return any(g.params for g in self.gates)


@dataclass
class BlockGroup:
    """Blocks of one layer with the same gate sequence, handled as stacked arrays.

    ``qubits[j]`` holds block ``j``; position ``k`` of every block is gate ``specs[k]`` with
    gate-parameter indices ``params[k][j]`` (or constant matrices ``const[k][j]``).
    """

    qubits: IntArray
    specs: tuple[GateSpec, ...]
    params: list[IntArray]  # per position: [n_blocks, n_params] indices into theta
    const: list[CArray | None]  # per position: [n_blocks, 2, 2] for constant gates
    batched: list[bool]  # per position
    # ``qubits`` as Python ints, for code traced by torch.compile / tf.function (where reading
    # values out of an array is a data-dependent operation)
    qubit_list: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.qubit_list:
            self.qubit_list = tuple(int(q) for q in self.qubits)

    @cached_property
    def parameterized(self) -> bool:
        return any(c is None for c in self.const)


@dataclass
class LayerOp:
    """Single-qubit blocks on distinct qubits, applied as chunks of adjacent qubits."""

    blocks: dict[int, Block]
    chunks: list[tuple[int, int]]  # (first qubit, number of qubits)
    groups: list[BlockGroup] = field(default_factory=list)

    @cached_property
    def batched(self) -> bool:
        return any(b.batched for b in self.blocks.values())

    @cached_property
    def parameterized_qubits(self) -> list[int]:
        return sorted(q for q, b in self.blocks.items() if b.parameterized)


def _group_blocks(blocks: dict[int, Block]) -> list[BlockGroup]:
    sig: dict[tuple[tuple[str, bool, bool], ...], list[Block]] = {}
    for q in sorted(blocks):
        b = blocks[q]
        key = tuple((g.spec.name, g.const_matrix is not None, g.batched) for g in b.gates)
        sig.setdefault(key, []).append(b)
    out = []
    for key, bl in sig.items():
        specs = tuple(g.spec for g in bl[0].gates)
        params: list[IntArray] = []
        const: list[CArray | None] = []
        for k, (_, is_const, _) in enumerate(key):
            if is_const:
                mats = [b.gates[k].const_matrix for b in bl]
                const.append(np.stack(mats))  # type: ignore[arg-type]
                params.append(np.zeros((len(bl), 0), dtype=np.intp))
            else:
                const.append(None)
                params.append(np.asarray([b.gates[k].params for b in bl], dtype=np.intp))
        out.append(
            BlockGroup(
                qubits=np.asarray([b.qubit for b in bl], dtype=np.intp),
                specs=specs,
                params=params,
                const=const,
                batched=[k[2] for k in key],
            )
        )
    return out


@dataclass
class PermOp:
    """``new[:, x] = phase[x] * old[:, src[x]]`` for a fused run of permutation gates."""

    src: IntArray
    phase: CArray | None
    inv_src: IntArray
    inv_phase: CArray | None


@dataclass
class DiagOp:
    """Multiplication by a constant phase vector (fused constant diagonal gates)."""

    diag: CArray


@dataclass
class GateOp:
    """A general multi-qubit gate (possibly parameterised)."""

    gate: GateRef


Op = LayerOp | PermOp | DiagOp | GateOp


@dataclass
class LayerSet:
    """Layers whose matrices are built together, in a few array operations for all of them.

    Every member has one block group over exactly the qubits its chunks cover (the usual
    trainable layer). Layers of one structure whose parameters are shared by the batch are
    stacked along a leading axis of length ``len(layers)``; a layer with per-sample parameters
    is a set of its own (its leading axis is the batch).
    """

    layers: tuple[LayerOp, ...]
    specs: tuple[GateSpec, ...]
    const: list[CArray | None]  # per position: [nb, 2, 2] for constant gates
    params: list[IntArray]  # per position: [L, nb, k] (shared) or [nb, k] (per sample)
    batched: bool
    chunk_size: int | None  # the size of every chunk when they are all equal


def _set_key(op: LayerOp) -> tuple[object, ...] | None:
    """Layers with equal keys stack; ``None``: the layer is not of the set form."""
    if len(op.groups) != 1:
        return None
    grp = op.groups[0]
    covered = tuple(q for start, size in op.chunks for q in range(start, start + size))
    if grp.qubit_list != covered:
        return None
    if op.batched:
        return ("batched", id(op))
    return (
        grp.qubit_list,
        tuple(s.name for s in grp.specs),
        tuple(None if c is None else c.tobytes() for c in grp.const),
        tuple(p.shape for p in grp.params),
        tuple(op.chunks),
    )


def layer_sets(ops: Sequence[Op]) -> tuple[list[LayerSet], dict[int, tuple[int, int]]]:
    """The :class:`LayerSet` s of a program's layers, and ``id(layer) -> (set, member)``."""
    found: dict[tuple[object, ...], list[LayerOp]] = {}
    for op in ops:
        if isinstance(op, LayerOp):
            key = _set_key(op)
            if key is not None:
                found.setdefault(key, []).append(op)
    sets: list[LayerSet] = []
    where: dict[int, tuple[int, int]] = {}
    for members in found.values():
        first = members[0]
        grp = first.groups[0]
        sizes = {size for _, size in first.chunks}
        if first.batched:
            params = list(grp.params)
        else:
            params = [
                np.stack([m.groups[0].params[k] for m in members]) for k in range(len(grp.specs))
            ]
        for j, m in enumerate(members):
            where[id(m)] = (len(sets), j)
        sets.append(
            LayerSet(
                layers=tuple(members),
                specs=grp.specs,
                const=list(grp.const),
                params=params,
                batched=first.batched,
                chunk_size=sizes.pop() if len(sizes) == 1 else None,
            )
        )
    return sets, where


@dataclass
class ObservableData:
    """Per flip mask ``f``: the gather index ``x ^ f`` (None for f = 0) and ``C_f [N, n_obs]``."""

    masks: list[tuple[IntArray | None, CArray]]
    n_obs: int
    real_diagonal: FloatArray | None  # when every observable is diagonal: real [N, n_obs]


@dataclass
class Program:
    """A compiled circuit template; see the module docstring."""

    n_qubits: int
    names: tuple[str, ...]  # all binding columns: per-sample first, then shared
    n_batched: int
    ops: list[Op]
    # theta = const + V @ W + sum_m coeff_m * prod(V[:, cols_m])  (gate parameters)
    n_theta: int
    theta_const: FloatArray
    theta_w: FloatArray  # [P, G]
    theta_mono: list[tuple[tuple[int, ...], int, float]]  # (columns, theta index, coeff)
    theta_batched: npt.NDArray[np.bool_]
    refs: list[GateRef] = field(default_factory=list)
    observables: ObservableData | None = None
    cache: dict[str, Any] = field(default_factory=dict)
    sets: list[LayerSet] = field(default_factory=list)  # see :func:`layer_sets`
    set_of: dict[int, tuple[int, int]] = field(default_factory=dict)  # id(layer) -> (set, member)

    @property
    def dim(self) -> int:
        return 1 << self.n_qubits


def bit_table(n: int) -> npt.NDArray[np.int8]:
    """``bits[x, q]`` = value of qubit ``q`` in basis index ``x`` (qubit 0 most significant)."""
    x = np.arange(1 << n)
    return ((x[:, None] >> (n - 1 - np.arange(n))[None, :]) & 1).astype(np.int8)


def _chunks(qubits: Sequence[int], n: int, chunk: int) -> list[tuple[int, int]]:
    """Split 0..n-1 into aligned chunks of ``chunk`` qubits, keeping those that hold a block."""
    used = set(qubits)
    out = []
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        if used.intersection(range(start, start + size)):
            out.append((start, size))
    return out


def default_chunk(n: int) -> int:
    """Qubits per dense chunk: few large matmuls at small n, small ones at large n."""
    if n <= 10:
        return max(1, math.ceil(n / 2))
    return 4


def compile_program(
    circuit: UnifiedCircuit,
    names: Sequence[str],
    shared_names: Sequence[str] = (),
    observables: Sequence[PauliSum] | None = None,
    chunk: int | None = None,
) -> Program:
    """Compile ``circuit`` for bindings whose columns are ``names`` then ``shared_names``."""
    n = circuit.n_qubits
    pmap = ParameterMap.build(circuit, names, shared_names)
    chunk = chunk or default_chunk(n)

    # -- gate parameters: one compiler for the engine, the plugins and parameter shift ---------
    theta_batched = pmap.batched
    refs: list[GateRef] = []
    for op, slot in zip(circuit, pmap.slots, strict=True):
        if op.is_measurement:
            continue
        spec = GATES[op.gate]
        if not op.is_parameterized:
            refs.append(GateRef(spec, op.qubits, (), False, spec.matrix(op.numeric_params())))
            continue
        batched = bool(theta_batched[list(slot)].any())
        refs.append(GateRef(spec, op.qubits, tuple(slot), batched, None))

    # -- schedule ---------------------------------------------------------------------------
    ops: list[Op] = []
    pending: dict[int, Block] = {}

    def flush() -> None:
        if pending:
            blocks = dict(pending)
            ops.append(LayerOp(blocks, _chunks(list(blocks), n, chunk), _group_blocks(blocks)))
            pending.clear()

    for ref in refs:
        if ref.spec.name == "I":
            continue
        if ref.spec.n_qubits == 1:
            q = ref.qubits[0]
            pending.setdefault(q, Block(q, [])).gates.append(ref)
            continue
        if any(q in pending for q in ref.qubits):
            flush()
        if ref.const_matrix is not None and ref.spec.permutation is not None:
            perm, phases = _full_permutation(ref, n)
            if ops and isinstance(ops[-1], PermOp):
                prev = ops[-1]
                # new[x] = ph2[x] * (ph1[src2[x]] * old[src1[src2[x]]])
                src = prev.src[perm]
                ph = _combine(phases, None if prev.phase is None else prev.phase[perm])
                ops[-1] = _perm_op(src, ph)
            else:
                ops.append(_perm_op(perm, phases))
            continue
        if ref.const_matrix is not None and ref.spec.is_diagonal:
            d = _full_diagonal(ref, n)
            if ops and isinstance(ops[-1], DiagOp):
                ops[-1] = DiagOp(ops[-1].diag * d)
            else:
                ops.append(DiagOp(d))
            continue
        ops.append(GateOp(ref))
    flush()

    prog = Program(
        n_qubits=n,
        names=pmap.names,
        n_batched=pmap.n_batched,
        ops=ops,
        n_theta=pmap.n_theta,
        theta_const=pmap.const,
        theta_w=pmap.w,
        theta_mono=list(pmap.mono),
        theta_batched=theta_batched,
        refs=refs,
    )
    for i, r in enumerate(refs):
        r.index = i
    prog.sets, prog.set_of = layer_sets(ops)
    if observables is not None:
        prog.observables = compile_observables(observables, n)
    return prog


def _combine(a: CArray | None, b: CArray | None) -> CArray | None:
    if a is None:
        return b
    if b is None:
        return a
    return a * b


def _perm_op(src: IntArray, phase: CArray | None) -> PermOp:
    inv = np.empty_like(src)
    inv[src] = np.arange(src.size)
    # old[y] = conj(phase[inv[y]]) * new[inv[y]]
    inv_phase = None if phase is None else np.conj(phase[inv])
    return PermOp(src, phase, inv, inv_phase)


def _local_index(qubits: Sequence[int], n: int) -> IntArray:
    """Index of each full basis state within the gate's local basis (first qubit MSB)."""
    x = np.arange(1 << n)
    local = np.zeros(1 << n, dtype=np.intp)
    for q in qubits:
        local = (local << 1) | ((x >> (n - 1 - q)) & 1)
    return local


def _full_permutation(ref: GateRef, n: int) -> tuple[IntArray, CArray | None]:
    perm_info = ref.spec.permutation
    assert perm_info is not None
    lperm, lphase = perm_info  # M[lperm[j], j] = lphase[j]
    x = np.arange(1 << n)
    local = _local_index(ref.qubits, n)
    # new[y] = M[y_l, j] old[x] where y_l = lperm[j]; so for output y, j = inverse(lperm)[y_l]
    linv = np.empty_like(lperm)
    linv[lperm] = np.arange(lperm.size)
    j = linv[local]
    src = x.copy()
    for pos, q in enumerate(ref.qubits):
        bit = (j >> (len(ref.qubits) - 1 - pos)) & 1
        shift = n - 1 - q
        src = (src & ~(1 << shift)) | (bit << shift)
    phase = lphase[j]
    return src.astype(np.intp), (None if np.allclose(phase, 1.0) else phase.astype(complex))


def _full_diagonal(ref: GateRef, n: int) -> CArray:
    assert ref.const_matrix is not None
    return np.diag(ref.const_matrix)[_local_index(ref.qubits, n)].astype(complex)


_PAULI_PHASE = {"X": (1, 0.0), "Y": (1, 1.0), "Z": (0, 1.0)}


def compile_observables(observables: Sequence[PauliSum], n: int) -> ObservableData:
    """Group the Pauli terms of all observables by bit-flip mask (see module docstring)."""
    dim = 1 << n
    bits = bit_table(n)
    masks: dict[int, CArray] = {}
    for o, obs in enumerate(observables):
        if obs.max_qubit >= n:
            raise CircuitError(
                f"Observable {obs} acts on qubit {obs.max_qubit}; the circuit has {n} qubits."
            )
        for term in obs.terms:
            flip = 0
            phase = np.full(dim, term.coeff, dtype=complex)
            for q, p in term.paulis:
                if p in "XY":
                    flip |= 1 << (n - 1 - q)
                if p == "Z":
                    phase *= 1 - 2 * bits[:, q]
                elif p == "Y":  # Y[1-x, x] = i * (-1)^x
                    phase *= 1j * (1 - 2 * bits[:, q])
            mat = masks.setdefault(flip, np.zeros((dim, len(observables)), dtype=complex))
            mat[:, o] += phase
    out: list[tuple[IntArray | None, CArray]] = []
    x = np.arange(dim)
    for flip, mat in sorted(masks.items()):
        out.append((None if flip == 0 else (x ^ flip).astype(np.intp), mat))
    real_diag = None
    if len(out) == 1 and out[0][0] is None and np.allclose(out[0][1].imag, 0.0):
        real_diag = np.ascontiguousarray(out[0][1].real)
    return ObservableData(out, len(observables), real_diag)
