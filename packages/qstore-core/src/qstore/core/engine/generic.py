"""The state-vector engine written once against a small set of array operations.

``qstore-torch`` and ``qstore-tf`` run compiled :class:`~qstore.core.engine.program.Program` s
with this module on their own tensors, so autograd, devices, ``torch.compile``, ``tf.function``
and distribution strategies work natively. The NumPy ``local`` backend runs the same programs
with :class:`NumpyOps`, and :mod:`qstore.core.engine.adjoint` adds the adjoint pass that every
library shares (NumPy has no autograd; torch and TensorFlow use it in one custom gradient).

An implementation of :class:`ArrayOps` supplies about twenty primitives, and may offer faster
optional ones (``gate_matrix``, ``kron``, ``mm2``, ``apply_left``, ``dagger``: see
:class:`NumpyOps`);
everything else (gate matrices from their Fourier form, fused layers as Kronecker chunks,
permutation gathers, expectations) is here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from qstore.core.engine.binding import gate_parameters
from qstore.core.engine.program import DiagOp, GateOp, LayerOp, LayerSet, PermOp, Program
from qstore.core.engine.threads import engine_threads
from qstore.core.errors import BindingError
from qstore.core.gates import ROTATION_AXES, GateSpec, axis_rotation

Tensor = Any


class ArrayOps(Protocol):
    """The primitives the engine needs from an array library (NumPy, torch, TensorFlow)."""

    real_dtype: Any
    complex_dtype: Any

    def const(self, value: npt.ArrayLike, complex_: bool) -> Tensor:
        """A constant tensor (on the right device) from NumPy data."""
        ...

    def to_real(self, x: Tensor) -> Tensor: ...

    def matmul(self, a: Tensor, b: Tensor) -> Tensor: ...

    def reshape(self, x: Tensor, shape: Sequence[int]) -> Tensor: ...

    def take(self, x: Tensor, index: npt.NDArray[np.intp]) -> Tensor:
        """Gather along the last axis with an integer index array of any shape."""
        ...

    def exp_i(self, phase: Tensor) -> Tensor:
        """``exp(1j * phase)`` for a real tensor, as a complex tensor."""
        ...

    def abs2(self, z: Tensor) -> Tensor: ...

    def real(self, z: Tensor) -> Tensor: ...

    def conj(self, z: Tensor) -> Tensor: ...

    def einsum(self, spec: str, *operands: Tensor) -> Tensor: ...

    def moveaxis(self, x: Tensor, source: Sequence[int], dest: Sequence[int]) -> Tensor: ...

    def swap_last(self, x: Tensor) -> Tensor:
        """Transpose the last two axes."""
        ...

    def broadcast_to(self, x: Tensor, shape: Sequence[int]) -> Tensor: ...

    def stack(self, xs: Sequence[Tensor], axis: int) -> Tensor: ...

    def unstack(self, x: Tensor, axis: int) -> list[Tensor]:
        """The slices of ``x`` along ``axis`` (one operation to differentiate, not one each)."""
        ...

    def shape(self, x: Tensor) -> tuple[int, ...]: ...

    def to_complex(self, x: Tensor) -> Tensor:
        """A real tensor as a complex one (of ``complex_dtype``)."""
        ...

    def concat(self, xs: Sequence[Tensor], axis: int) -> Tensor: ...

    def sum(self, x: Tensor, axis: int | tuple[int, ...]) -> Tensor: ...


_AXIS_ORDERS: dict[tuple[int, tuple[int, ...], tuple[int, ...]], tuple[int, ...]] = {}


def _moveaxis_order(ndim: int, source: tuple[int, ...], dest: tuple[int, ...]) -> tuple[int, ...]:
    """The ``transpose`` order that moves axes ``source`` to positions ``dest`` (as
    ``np.moveaxis``; negative axes count from the end)."""
    src = [a % ndim for a in source]
    dst = [a % ndim for a in dest]
    if len(set(src)) != len(src) or len(set(dst)) != len(dst) or len(src) != len(dst):
        raise ValueError(f"moveaxis: bad axes {source} -> {dest} for {ndim} dimensions")
    order = [a for a in range(ndim) if a not in src]
    for d, a in sorted(zip(dst, src, strict=True)):
        order.insert(d, a)
    return tuple(order)


class NumpyOps:
    """:class:`ArrayOps` on NumPy (used in tests and as the template for other libraries)."""

    unitary_max_qubits = 6  # NumPy pays per call, like eager frameworks
    batched_products = True  # stacks of small matrix products are fast (see adjoint)

    def __init__(self, complex_dtype: Any = np.complex128) -> None:
        self.complex_dtype = np.dtype(complex_dtype)
        self.real_dtype = np.dtype(np.float32 if self.complex_dtype == np.complex64 else np.float64)
        self._consts: dict[tuple[int, bool], tuple[Any, Any]] = {}

    def const(self, value: npt.ArrayLike, complex_: bool) -> Tensor:
        dtype = self.complex_dtype if complex_ else self.real_dtype
        if not isinstance(value, np.ndarray) or value.dtype == dtype:
            return np.asarray(value, dtype=dtype)
        # Constants are long-lived arrays (see ``_program_const``): convert each once.
        key = (id(value), complex_)
        hit = self._consts.get(key)
        if hit is None or hit[0] is not value:
            if len(self._consts) > 4096:
                self._consts.clear()
            hit = self._consts[key] = (value, np.asarray(value, dtype=dtype))
        return hit[1]

    def to_real(self, x: Tensor) -> Tensor:
        return np.asarray(x, dtype=self.real_dtype)

    def matmul(self, a: Tensor, b: Tensor) -> Tensor:
        return np.matmul(a, b)

    def reshape(self, x: Tensor, shape: Sequence[int]) -> Tensor:
        return x.reshape(shape)

    def take(self, x: Tensor, index: npt.NDArray[np.intp]) -> Tensor:
        return x.take(index, axis=-1)

    def exp_i(self, phase: Tensor) -> Tensor:
        return np.exp(1j * phase).astype(self.complex_dtype)

    def abs2(self, z: Tensor) -> Tensor:
        return z.real**2 + z.imag**2

    def real(self, z: Tensor) -> Tensor:
        return z.real

    def conj(self, z: Tensor) -> Tensor:
        return z.conj()

    def einsum(self, spec: str, *operands: Tensor) -> Tensor:
        return np.einsum(spec, *operands)

    def moveaxis(self, x: Tensor, source: Sequence[int], dest: Sequence[int]) -> Tensor:
        # np.moveaxis normalises its arguments in Python on every call; the engine asks for a
        # few permutations many times, so each is worked out once and kept
        key = (x.ndim, tuple(source), tuple(dest))
        order = _AXIS_ORDERS.get(key)
        if order is None:
            order = _AXIS_ORDERS[key] = _moveaxis_order(*key)
        return x.transpose(order)

    def swap_last(self, x: Tensor) -> Tensor:
        return x.swapaxes(-1, -2)

    def broadcast_to(self, x: Tensor, shape: Sequence[int]) -> Tensor:
        return np.broadcast_to(x, tuple(shape))

    def stack(self, xs: Sequence[Tensor], axis: int) -> Tensor:
        return np.stack(list(xs), axis=axis)

    def unstack(self, x: Tensor, axis: int) -> list[Tensor]:
        if axis % x.ndim == 0:
            return list(x)
        return list(np.moveaxis(x, axis, 0))

    def shape(self, x: Tensor) -> tuple[int, ...]:
        shape: tuple[int, ...] = x.shape
        return shape

    def to_complex(self, x: Tensor) -> Tensor:
        return np.asarray(x, dtype=self.complex_dtype)

    def concat(self, xs: Sequence[Tensor], axis: int) -> Tensor:
        return np.concatenate(list(xs), axis=axis)

    def sum(self, x: Tensor, axis: int | tuple[int, ...]) -> Tensor:
        return x.sum(axis=axis)

    # -- optional primitives: NumPy's faster ways ------------------------------------------
    def scope(self, n_qubits: int, rows: int) -> Any:
        """A context for one engine call on ``rows`` states of ``n_qubits`` qubits: one BLAS
        thread for small states (see :mod:`qstore.core.engine.threads`)."""
        return engine_threads(rows << n_qubits)

    def gate_matrix(self, spec: GateSpec, params: Tensor) -> Tensor:
        """``spec``'s matrices for parameters ``[..., k]`` from its closed form (no Fourier sum)."""
        axis = ROTATION_AXES.get(spec.name)
        if axis is not None:  # written in the working dtype directly
            return axis_rotation(axis, params[..., 0], self.complex_dtype)
        return spec.matrix_fn(params).astype(self.complex_dtype, copy=False)

    def kron(self, a: Tensor, b: Tensor) -> Tensor:
        """Kronecker product over the last two axes (leading axes broadcast), elementwise."""
        da, db = a.shape[-1], b.shape[-1]
        out = a[..., :, None, :, None] * b[..., None, :, None, :]
        return out.reshape(*out.shape[:-4], da * db, da * db)

    def apply_left(self, k: Tensor, x: Tensor) -> Tensor:
        """``k [d, d]`` applied to axis 1 of ``x [N, d, r]``. Where ``r`` is small, one product
        on a transposed copy beats ``N`` small ones (d = r = 8: N = 32 15 against 19 us, N = 1024
        310 against 540 us); with long rows the stacked products win (N = 512, d = 16, r = 256:
        7.4 against 16.6 ms)."""
        n, d, r = x.shape
        if r > 16:
            return np.matmul(k, x)
        cols = np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(d, n * r)
        return (k @ cols).reshape(d, n, r).transpose(1, 0, 2)

    def dagger(self, m: Tensor) -> Tensor:
        """Conjugate transpose written row-major: the backward pass multiplies states by it,
        and NumPy's stacked products run about a third slower with a transposed operand."""
        return np.conj(m.swapaxes(-1, -2), order="C")

    def mm2(self, a: Tensor, b: Tensor) -> Tensor:
        """``a @ b`` for stacks of 2x2 matrices: elementwise when the stack is large (NumPy's
        matmul pays per 2x2 product there)."""
        if (np.ndim(a) <= 3 and np.ndim(b) <= 3) or a.shape[-1] != 2:
            return np.matmul(a, b)
        return a[..., :, 0, None] * b[..., 0, None, :] + a[..., :, 1, None] * b[..., 1, None, :]


# A plain dict rather than functools.cache: torch.compile traces a dict lookup into constants but
# looks through cache wrappers and would re-trace the NumPy code.
_FOURIER: dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.complex128]]] = {}


def fourier_arrays(spec: GateSpec) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.complex128]]:
    """``(A/2 [k, T], C [T, d, d])`` with ``M(theta) = sum_t exp(i theta @ A[:, t] / 2) C[t]``."""
    hit = _FOURIER.get(spec.name)
    if hit is None:
        terms = spec.fourier
        a = np.asarray([t[0] for t in terms], dtype=np.float64).T * 0.5
        c = np.stack([t[1] for t in terms])
        hit = _FOURIER[spec.name] = (a, c)
    return hit


def gate_matrices(
    ops: ArrayOps, spec: GateSpec, theta: Tensor, index: npt.NDArray[np.intp], batched: bool
) -> Tensor:
    """Matrices ``[..., nb, d, d]`` of gates ``spec`` with parameters ``theta[:, index]``."""
    src = theta if batched else theta[0]
    p = ops.take(src, index)  # [(B,) nb, k]
    closed = getattr(ops, "gate_matrix", None)
    if closed is not None:
        return closed(spec, p)
    a, c = fourier_arrays(spec)
    phases = ops.exp_i(ops.matmul(p, ops.const(a, False)))  # [(B,) nb, T]
    return ops.einsum("...t,tij->...ij", phases, ops.const(c, True))


def gate_log_derivative(
    ops: ArrayOps,
    spec: GateSpec,
    theta: Tensor,
    index: npt.NDArray[np.intp],
    batched: bool,
    pi: int,
    matrix: Tensor,
) -> Tensor:
    """``dM/dtheta_pi @ M^dagger`` of gates ``spec`` (``matrix`` is ``M``): a constant for Pauli
    rotations (``-i/2 P``), else from the Fourier form ``dM = sum_t i a_t exp(i a @ theta) C_t``."""
    const = spec.log_derivatives[pi]
    if const is not None:
        return ops.const(const, True)
    a, c = fourier_arrays(spec)
    src = theta if batched else theta[0]
    p = ops.take(src, index)
    phases = ops.exp_i(ops.matmul(p, ops.const(a, False)))  # [(B,) nb, T]
    slope = _slope(spec, pi)
    dm = ops.einsum("...t,tij->...ij", phases * ops.const(slope, True), ops.const(c, True))
    return mm2(ops, dm, dagger(ops, matrix))


_SLOPES: dict[tuple[str, int], npt.NDArray[np.complex128]] = {}


def _slope(spec: GateSpec, pi: int) -> npt.NDArray[np.complex128]:
    """``i a[pi]``: the derivative factor of each Fourier term of ``spec`` in parameter ``pi``
    (kept, like ``_FOURIER``, as a long-lived array that array libraries cache by identity)."""
    hit = _SLOPES.get((spec.name, pi))
    if hit is None:
        hit = _SLOPES[(spec.name, pi)] = 1j * fourier_arrays(spec)[0][pi]
    return hit


def mm2(ops: ArrayOps, a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` for stacks of small matrices (``ops.mm2`` where the library has a faster way)."""
    fast = getattr(ops, "mm2", None)
    return fast(a, b) if fast is not None else ops.matmul(a, b)


def dagger(ops: ArrayOps, m: Tensor) -> Tensor:
    """Conjugate transpose over the last two axes (``ops.dagger`` where the library has one)."""
    fast = getattr(ops, "dagger", None)
    return fast(m) if fast is not None else ops.conj(ops.swap_last(m))


def _kron(a: Tensor, b: Tensor, ops: ArrayOps) -> Tensor:
    fast = getattr(ops, "kron", None)
    if fast is not None:
        return fast(a, b)
    sa, sb = ops.shape(a), ops.shape(b)
    da, db = sa[-1], sb[-1]
    lead = tuple(sa[:-2])
    static = all(isinstance(d, int) for d in (*lead, *sb[:-2]))  # not symbolic (tf.function)
    if static and lead == tuple(sb[:-2]):
        # An outer product by matmul, then (i, j, k, l) -> (i, k, j, l): cheaper to
        # differentiate than a broadcast product (whose gradient is a strided reduction).
        outer = ops.matmul(ops.reshape(a, (*lead, da * da, 1)), ops.reshape(b, (*lead, 1, db * db)))
        t = ops.moveaxis(ops.reshape(outer, (*lead, da, da, db, db)), [-3], [-2])
        return ops.reshape(t, (*lead, da * db, da * db))
    out = a[..., :, None, :, None] * b[..., None, :, None, :]
    lead = ops.shape(out)[:-4]
    return ops.reshape(out, (*lead, da * db, da * db))


def _unstack(ops: ArrayOps, x: Tensor, axis: int) -> list[Tensor]:
    """``ops.unstack`` where the array library has it (indexing otherwise)."""
    unstack = getattr(ops, "unstack", None)
    if unstack is not None:
        return list(unstack(x, axis))
    n = ops.shape(x)[axis]
    if axis < 0:
        axis += len(ops.shape(x))
    return [x[(slice(None),) * axis + (i,)] for i in range(n)]


@dataclass(frozen=True)
class LayerMatrices:
    """The matrices of one layer for one batch: what the forward pass applies and the adjoint
    pass differentiates."""

    per_qubit: dict[int, Tensor]  # fused block per qubit: [2, 2] or [B, 2, 2] (may be empty)
    group_gates: tuple[tuple[Tensor, ...], ...]  # per group, per position: [(B,) nb, 2, 2]
    chunks: tuple[Tensor, ...]  # per chunk of the layer: Kronecker product of its blocks
    blocks: Tensor | None = None  # layers of a set: the fused blocks [(B,) nb, 2, 2] ...
    block_qubits: tuple[int, ...] = ()  # ... of these qubits (``per_qubit`` is then empty)
    member: tuple[int, int] | None = None  # (set, member) of a layer built with its set
    set_gates: tuple[Tensor, ...] | None = None  # the set's gates per position, [L, nb, 2, 2]


def block_product(ops: ArrayOps, gates: Sequence[Tensor]) -> Tensor:
    """The product of a block's gates, ``gates[-1] @ gates[-2] @ (and so on) @ gates[0]`` (a
    block applies its first gate first), multiplied from the last: the shared gates after a
    per-sample one (an encoding) then multiply as one small stack, and only the last product is
    per sample."""
    m = gates[-1]
    for g in gates[-2::-1]:
        m = mm2(ops, m, g)
    return m


def layer_matrices(
    ops: ArrayOps, op: LayerOp, theta: Tensor, chunks_too: bool = True
) -> LayerMatrices:
    """Fused matrix of every block of a layer, the gates of each group and the chunk matrices
    (not with ``chunks_too=False``: a first layer that only prepares a product state)."""
    per_q: dict[int, Tensor] = {}
    groups: list[tuple[Tensor, ...]] = []
    for grp in op.groups:
        gl: list[Tensor] = []
        for k, spec in enumerate(grp.specs):
            c = grp.const[k]
            if c is not None:
                g = ops.const(c, True)
            else:
                g = gate_matrices(ops, spec, theta, grp.params[k], grp.batched[k])
            gl.append(g)
        m = block_product(ops, gl)
        groups.append(tuple(gl))
        for q, mq in zip(grp.qubit_list, _unstack(ops, m, -3), strict=True):
            per_q[q] = mq
    eye = ops.const(_EYE2, True)
    chunks = []
    for start, size in op.chunks if chunks_too else ():
        kr: Tensor = per_q.get(start, eye)
        for q in range(start + 1, start + size):
            kr = _kron(kr, per_q.get(q, eye), ops)
        chunks.append(kr)
    return LayerMatrices(per_q, tuple(groups), tuple(chunks))


def set_matrices(
    ops: ArrayOps, prog: Program, index: int, theta: Tensor, chunks_too: bool = True
) -> list[LayerMatrices]:
    """The :class:`LayerMatrices` of every member of ``prog.sets[index]``, built together: the
    gates of all members in one array per position, their chunks in one Kronecker chain (not
    with ``chunks_too=False``, for a per-sample first layer that only prepares a product state)."""
    lset = prog.sets[index]
    first = lset.layers[0]
    pos_batched = first.groups[0].batched
    n_members = len(lset.layers)
    gl: list[Tensor] = []
    for k, spec in enumerate(lset.specs):
        c = lset.const[k]
        if c is not None:
            g = ops.const(c, True)
        else:
            g = gate_matrices(ops, spec, theta, lset.params[k], pos_batched[k])
        gl.append(g)
    m = block_product(ops, gl)
    if len(ops.shape(m)) == 3:  # constant gates only: the same blocks for every member
        m = ops.broadcast_to(m, (n_members, *ops.shape(m)))
    # m: [L, nb, 2, 2] (members of a shared set) or [B, nb, 2, 2] (a per-sample layer)
    chunk_mats = _set_chunks(ops, lset, m) if chunks_too else []
    qubits_of = first.groups[0].qubit_list
    if lset.batched:
        return [LayerMatrices({}, (tuple(gl),), tuple(chunk_mats), m, qubits_of, (index, 0))]
    per_chunk = [_unstack(ops, c, 0) for c in chunk_mats]
    blocks = _unstack(ops, m, 0)
    members = [_unstack(ops, g, 0) if len(ops.shape(g)) == 4 else None for g in gl]
    out = []
    for j in range(n_members):
        gates = tuple(g if mem is None else mem[j] for g, mem in zip(gl, members, strict=True))
        out.append(
            LayerMatrices(
                {},
                (gates,),
                tuple(c[j] for c in per_chunk),
                blocks[j],
                qubits_of,
                (index, j),
                tuple(gl),
            )
        )
    return out


def _set_chunks(ops: ArrayOps, lset: LayerSet, m: Tensor) -> list[Tensor]:
    """The chunk matrices ``[lead, 2**size, 2**size]`` of a set's fused blocks ``m [lead, nb, 2,
    2]``: one Kronecker chain for all chunks when they have one size, else chunk by chunk."""
    chunks = lset.layers[0].chunks
    if lset.chunk_size is not None:
        size, count = lset.chunk_size, len(chunks)
        parts = _unstack(ops, ops.reshape(m, (-1, count, size, 2, 2)), 2)
        kr = parts[0]
        for part in parts[1:]:
            kr = _kron(kr, part, ops)
        return _unstack(ops, kr, 1) if count > 1 else [kr[:, 0]]
    qubits = _unstack(ops, m, 1)
    out: list[Tensor] = []
    offset = 0
    for _, size in chunks:
        kr = qubits[offset]
        for part in qubits[offset + 1 : offset + size]:
            kr = _kron(kr, part, ops)
        out.append(kr)
        offset += size
    return out


def op_matrices(
    ops: ArrayOps,
    prog: Program,
    theta: Tensor,
    oplist: Sequence[object],
    product_first: bool = False,
) -> dict[int, Any]:
    """The matrices of every op in ``oplist`` for gate parameters ``theta``, by ``id(op)``:
    :class:`LayerMatrices` for layers, the matrix for parametrised or constant gates.

    ``product_first``: ``oplist[0]`` is a layer that acts on ``|0...0>`` (:func:`product_state`),
    so its chunk matrices are not needed when it has per-sample parameters of its own.
    """
    out: dict[int, Any] = {}
    for pos, op in enumerate(oplist):
        if id(op) in out:
            continue
        if isinstance(op, LayerOp):
            where = prog.set_of.get(id(op))
            alone = pos == 0 and product_first and (where is None or prog.sets[where[0]].batched)
            if where is None:
                out[id(op)] = layer_matrices(ops, op, theta, chunks_too=not alone)
            else:
                built = set_matrices(ops, prog, where[0], theta, chunks_too=not alone)
                for member, lm in zip(prog.sets[where[0]].layers, built, strict=True):
                    out[id(member)] = lm
        elif isinstance(op, GateOp):
            ref = op.gate
            if ref.const_matrix is not None:
                out[id(op)] = ops.const(ref.const_matrix, True)
            else:
                idx = _program_const(
                    prog,
                    f"generic.params.{ref.index}",
                    lambda ref=ref: np.asarray([ref.params], dtype=np.intp),
                )
                out[id(op)] = gate_matrices(ops, ref.spec, theta, idx, ref.batched)[..., 0, :, :]
    return out


def apply_op(
    ops: ArrayOps,
    prog: Program,
    state: Tensor,
    op: object,
    mats: dict[int, Any],
    inverse: bool = False,
) -> Tensor:
    """One op (or its inverse) applied to a batch of states ``[B, 2**n]``."""
    n = prog.n_qubits
    if isinstance(op, LayerOp):
        lm: LayerMatrices = mats[id(op)]
        for (start, size), k in zip(op.chunks, lm.chunks, strict=True):  # disjoint: any order
            state = apply_chunk(ops, state, k, n, start, size, inverse)
        return state
    if isinstance(op, PermOp):
        if inverse:
            state = ops.take(state, op.inv_src)
            return state if op.inv_phase is None else state * ops.const(op.inv_phase, True)
        state = ops.take(state, op.src)
        return state if op.phase is None else state * ops.const(op.phase, True)
    if isinstance(op, DiagOp):
        if inverse:
            inv = _program_const(prog, f"generic.conj.{id(op)}", lambda: np.conj(op.diag))
            return state * ops.const(inv, True)
        return state * ops.const(op.diag, True)
    assert isinstance(op, GateOp)
    m = mats[id(op)]
    return apply_gate(ops, state, dagger(ops, m) if inverse else m, op.gate.qubits, n)


def apply_chunk(
    ops: ArrayOps,
    state: Tensor,
    k: Tensor,
    n: int,
    start: int,
    size: int,
    inverse: bool = False,
) -> Tensor:
    """The chunk matrix ``k`` (``[d, d]``, or ``[B, d, d]`` per sample), or its inverse
    ``k^dagger``, applied to the ``size`` qubits from ``start`` on of states ``[B, 2**n]``."""
    bsz = ops.shape(state)[0]
    d, a, r = 1 << size, 1 << start, 1 << (n - start - size)
    if r == 1:  # the chunk's qubits are the last ones: states times k^T (k^dagger^T = conj k)
        right = ops.conj(k) if inverse else ops.swap_last(k)
        if len(ops.shape(k)) == 2:
            out = ops.matmul(ops.reshape(state, (bsz * a, d)), right)
        else:
            out = ops.matmul(ops.reshape(state, (bsz, a, d)), right)
        return ops.reshape(out, (bsz, 1 << n))
    if inverse:
        k = dagger(ops, k)
    if len(ops.shape(k)) == 2:
        rows = ops.reshape(state, (bsz * a, d, r))
        # optional primitive: ``k`` applied to axis 1 of ``[N, d, r]`` the library's best way
        left = getattr(ops, "apply_left", None)
        out = left(k, rows) if left is not None else ops.matmul(k, rows)
    else:
        out = ops.matmul(k[:, None], ops.reshape(state, (bsz, a, d, r)))
    return ops.reshape(out, (bsz, 1 << n))


def apply_gate(ops: ArrayOps, state: Tensor, m: Tensor, qubits: tuple[int, ...], n: int) -> Tensor:
    bsz = ops.shape(state)[0]
    k = len(qubits)
    axes = [1 + q for q in qubits]
    tail = list(range(n + 1 - k, n + 1))
    t = ops.moveaxis(ops.reshape(state, (bsz,) + (2,) * n), axes, tail)
    shape = ops.shape(t)
    out = ops.matmul(ops.reshape(t, (bsz, -1, 1 << k)), ops.swap_last(m))
    out = ops.moveaxis(ops.reshape(out, shape), tail, axes)
    return ops.reshape(out, (bsz, 1 << n))


# Constants handed to ``ops.const`` are long-lived objects (module constants, program data), so
# that array libraries can cache their device copies by identity.
_EYE2 = np.eye(2)
_E0 = np.array([1.0, 0.0])


def _program_const(prog: Program, key: str, make: Any) -> Any:
    hit = prog.cache.get(key)
    if hit is None:
        hit = prog.cache[key] = make()
    return hit


def _ground_state(n: int) -> npt.NDArray[np.float64]:
    init = np.zeros((1, 1 << n))
    init[0, 0] = 1.0
    return init


def scope(ops: ArrayOps, prog: Program, rows: Any) -> Any:
    """``ops.scope`` for an engine call where the library has one (thread settings)."""
    fn = getattr(ops, "scope", None)
    if fn is None or not isinstance(rows, int):
        return contextlib.nullcontext()
    return fn(prog.n_qubits, rows)


def run(
    ops: ArrayOps, prog: Program, values: Tensor, initial_state: Tensor | None = None
) -> Tensor:
    """Final states ``[B, 2**n]`` for bindings ``values [B, P]``.

    ``initial_state [B, 2**n]`` (complex, of ``ops``' dtype) replaces ``|0...0>`` when given.
    On small registers the trailing part of the circuit whose parameters are shared by the
    whole batch runs as one matrix (see :func:`unitary_plan`).
    """
    with scope(ops, prog, ops.shape(values)[0]):
        return _run(ops, prog, values, initial_state)


def _run(ops: ArrayOps, prog: Program, values: Tensor, initial_state: Tensor | None) -> Tensor:
    n = prog.n_qubits
    theta = gate_parameters(ops, prog, values)
    bsz = ops.shape(values)[0]
    eye = ops.const(_EYE2, True)
    plan = None
    if n <= getattr(ops, "unitary_max_qubits", 0):
        plan = _program_const(prog, "generic.unitary_plan", lambda: unitary_plan(prog))
    use_plan = plan is not None and (initial_state is not None or plan.start > 0)
    opsl = list(prog.ops[: plan.start] if use_plan and plan is not None else prog.ops)
    if initial_state is not None:
        # The batch size may be a symbolic tensor while tracing (tf.function): compare it only
        # when both sides are plain ints.
        ishape = tuple(ops.shape(initial_state))
        batch_ok = not (isinstance(bsz, int) and isinstance(ishape[0], int)) or ishape[0] == bsz
        if len(ishape) != 2 or ishape[-1] != 1 << n or not batch_ok:
            raise BindingError(
                f"initial_state must have shape [batch, 2**n_qubits] = {[bsz, 1 << n]}, got "
                f"{list(ishape)}."
            )
        state = initial_state
    product = initial_state is None and bool(opsl) and isinstance(opsl[0], LayerOp)
    mats = op_matrices(ops, prog, theta, opsl, product_first=product)
    if initial_state is not None:
        pass
    elif product:
        state = product_state(ops, mats[id(opsl[0])], n, bsz)
        opsl = opsl[1:]
    else:
        init = _program_const(prog, "generic.ground", lambda: _ground_state(n))
        state = ops.broadcast_to(ops.const(init, True), (bsz, 1 << n))
    for op in opsl:
        state = apply_op(ops, prog, state, op, mats)
    if use_plan and plan is not None:
        state = ops.matmul(state, _plan_rows(ops, prog, plan, theta, eye))
    return state


def product_state(ops: ArrayOps, first: LayerMatrices, n: int, bsz: Any) -> Tensor:
    """The state after a first layer acting on ``|0...0>``: a Kronecker product of columns."""
    if first.blocks is not None and first.block_qubits == tuple(range(n)):
        firsts = first.blocks[..., :, 0]  # [(B,) n, 2]: every qubit's column at once
        if len(ops.shape(firsts)) == 2:
            firsts = ops.broadcast_to(firsts, (bsz, n, 2))
        return _kron_columns(ops, firsts, n)
    e0 = ops.const(_E0, True)
    given: dict[int, Tensor]
    if first.blocks is not None:
        given = dict(
            zip(first.block_qubits, _unstack(ops, first.blocks[..., :, 0], -2), strict=True)
        )
    else:
        given = {q: m[..., :, 0] for q, m in first.per_qubit.items()}
    cols: list[Tensor] = []
    for q in range(n):
        v = given.get(q, e0)
        cols.append(ops.broadcast_to(v, (bsz, 2)) if len(ops.shape(v)) == 1 else v)
    state = cols[0]
    for v in cols[1:]:
        state = ops.reshape(state[:, :, None] * v[:, None, :], (bsz, -1))
    return state


def _kron_columns(ops: ArrayOps, cols: Tensor, n: int) -> Tensor:
    """``cols[:, 0] (x) cols[:, 1] (x) ...`` for ``cols [B, n, 2]``: neighbours are paired level
    by level (one product per level for all pairs), an odd one out waits at the end."""
    x, m, d = cols, n, 2
    tails: list[Tensor] = []  # odd ones out, last qubits first
    while m > 1:
        if m % 2:
            tails.append(x[:, m - 1])
            x, m = x[:, : m - 1], m - 1
        x = ops.reshape(x[:, 0::2, :, None] * x[:, 1::2, None, :], (-1, m // 2, d * d))
        m, d = m // 2, d * d
    state = x[:, 0]
    for tail in reversed(tails):
        state = ops.reshape(state[:, :, None] * tail[:, None, :], (ops.shape(state)[0], -1))
    return state


# -- shared layers as one matrix ---------------------------------------------------------------
#: No plan is made for larger registers: a ``2**n x 2**n`` matrix would cost more than it saves.
UNITARY_MAX_QUBITS = 8


@dataclass(frozen=True)
class LayerStack:
    """``count`` consecutive layers of one structure, each followed by the same permutation
    (or none): built together, as ``[count, 2**n, 2**n]`` matrices, in a few array operations."""

    first: LayerOp
    params: tuple[tuple[npt.NDArray[np.intp] | None, ...], ...]  # per group, per position
    perm: PermOp | None
    count: int


@dataclass(frozen=True)
class UnitaryPlan:
    """``prog.ops[start:]`` (no per-sample parameter in them) as layer stacks and single ops."""

    start: int
    segments: tuple[LayerStack | LayerOp | PermOp | DiagOp | GateOp, ...]


def _layer_signature(op: LayerOp) -> tuple[object, ...]:
    return tuple(
        (
            grp.qubit_list,
            tuple(s.name for s in grp.specs),
            tuple(None if c is None else c.tobytes() for c in grp.const),
            tuple(p.shape for p in grp.params),
        )
        for grp in op.groups
    )


def _perm_signature(op: PermOp | None) -> tuple[object, ...]:
    if op is None:
        return ()
    return (op.src.tobytes(), None if op.phase is None else op.phase.tobytes())


def unitary_plan(prog: Program) -> UnitaryPlan | None:
    """How :func:`run` builds the trailing shared part of ``prog`` as one matrix, or ``None``.

    Worth it on small registers when that part has at least two layers: stacked layers of one
    structure (the usual trainable block) then cost a handful of array operations in all instead
    of a handful per layer and chunk. That is what eager frameworks pay for, op by op; graph
    runtimes (``tf.function``) pay for arithmetic instead. So an :class:`ArrayOps` opts in with an
    attribute ``unitary_max_qubits`` (the largest register to run this way; absent: 0).
    """
    ops = prog.ops
    if prog.n_qubits > UNITARY_MAX_QUBITS:
        return None
    start = 0
    for i, op in enumerate(ops):
        if (isinstance(op, LayerOp) and op.batched) or (isinstance(op, GateOp) and op.gate.batched):
            start = i + 1
    while start < len(ops) and not isinstance(ops[start], LayerOp):
        start += 1  # ops before the first shared layer cost no more on the batch of states
    suffix = list(ops[start:])
    if sum(isinstance(o, LayerOp) for o in suffix) < 2:
        return None
    segments: list[LayerStack | LayerOp | PermOp | DiagOp | GateOp] = []

    def pair_at(j: int) -> tuple[LayerOp, PermOp | None, int]:
        lay = suffix[j]
        assert isinstance(lay, LayerOp)
        nxt = suffix[j + 1] if j + 1 < len(suffix) else None
        perm = nxt if isinstance(nxt, PermOp) else None
        return lay, perm, j + (2 if perm is not None else 1)

    i = 0
    while i < len(suffix):
        op = suffix[i]
        if not isinstance(op, LayerOp):
            segments.append(op)
            i += 1
            continue
        lay, perm, j = pair_at(i)
        key = (_layer_signature(lay), _perm_signature(perm))
        members = [lay]
        while j < len(suffix) and isinstance(suffix[j], LayerOp):
            lay2, perm2, j2 = pair_at(j)
            if (_layer_signature(lay2), _perm_signature(perm2)) != key:
                break
            members.append(lay2)
            j = j2
        params = tuple(
            tuple(
                None
                if grp.const[k] is not None
                else np.stack([m.groups[g].params[k] for m in members]).astype(np.intp)
                for k in range(len(grp.specs))
            )
            for g, grp in enumerate(lay.groups)
        )
        segments.append(LayerStack(lay, params, perm, len(members)))
        i = j
    return UnitaryPlan(start, tuple(segments))


def _stack_rows(ops: ArrayOps, prog: Program, st: LayerStack, theta: Tensor, eye: Tensor) -> Tensor:
    """The layers of a stack as row matrices ``[count, 2**n, 2**n]``: a state (row vector) ``s``
    becomes ``s @ R`` (``R`` is the transpose of the layer's unitary, then its permutation)."""
    n = prog.n_qubits
    per_q: dict[int, Tensor] = {}
    for grp, params in zip(st.first.groups, st.params, strict=True):
        m = None
        for k, spec in enumerate(grp.specs):
            idx = params[k]
            c = grp.const[k]
            if idx is None:
                assert c is not None
                g = ops.const(c, True)
            else:
                g = gate_matrices(ops, spec, theta, idx, False)
            m = g if m is None else ops.matmul(g, m)
        assert m is not None
        for q, mq in zip(grp.qubit_list, _unstack(ops, m, -3), strict=True):
            per_q[q] = mq
    rows = None
    for q in range(n):  # transpose of a Kronecker product: the product of the transposes
        mt = ops.swap_last(per_q.get(q, eye))
        rows = mt if rows is None else _kron(rows, mt, ops)
    assert rows is not None
    if len(ops.shape(rows)) == 2:  # nothing parameterised: one constant layer, repeated
        rows = ops.broadcast_to(rows, (st.count, *ops.shape(rows)))
    if st.perm is not None:
        rows = ops.take(rows, st.perm.src)
        if st.perm.phase is not None:
            rows = rows * ops.const(st.perm.phase, True)
    return rows


def _chain(ops: ArrayOps, mats: Tensor, count: int) -> Tensor:
    """``mats[0] @ mats[1] @ ... @ mats[count - 1]``, multiplied as a balanced tree."""
    parts = _unstack(ops, mats, 0)
    while len(parts) > 1:
        paired = [ops.matmul(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
        parts = paired + ([parts[-1]] if len(parts) % 2 else [])
    return parts[0]


def _plan_rows(
    ops: ArrayOps, prog: Program, plan: UnitaryPlan, theta: Tensor, eye: Tensor
) -> Tensor:
    """The row matrix ``[2**n, 2**n]`` of ``prog.ops[plan.start:]``."""
    rows = None
    for seg in plan.segments:
        if isinstance(seg, LayerStack):
            r = _chain(ops, _stack_rows(ops, prog, seg, theta, eye), seg.count)
            rows = r if rows is None else ops.matmul(rows, r)
        else:
            if rows is None:
                ident = _program_const(prog, "generic.identity", lambda: np.eye(1 << prog.n_qubits))
                rows = ops.const(ident, True)
            rows = apply_op(ops, prog, rows, seg, op_matrices(ops, prog, theta, [seg]))
    assert rows is not None
    return rows


def expectations(ops: ArrayOps, prog: Program, state: Tensor) -> Tensor:
    """``<O_o>`` for the program's observables: ``[B, n_obs]`` real."""
    with scope(ops, prog, ops.shape(state)[0]):
        return _expectations(ops, prog, state)


def _expectations(ops: ArrayOps, prog: Program, state: Tensor) -> Tensor:
    obs = prog.observables
    assert obs is not None
    if obs.real_diagonal is not None:
        return ops.matmul(ops.abs2(state), ops.const(obs.real_diagonal, False))
    out = None
    for gidx, c in obs.masks:
        partner = state if gidx is None else ops.take(state, gidx)
        term = ops.real(ops.matmul(ops.conj(partner) * state, ops.const(c, True)))
        out = term if out is None else out + term
    return out


def forward(
    ops: ArrayOps, prog: Program, values: Tensor, initial_state: Tensor | None = None
) -> Tensor:
    """Expectations ``[B, n_obs]`` for bindings ``values [B, P]`` (shared columns included)."""
    return expectations(ops, prog, run(ops, prog, values, initial_state))
