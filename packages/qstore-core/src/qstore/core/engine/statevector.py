"""The batched state-vector engine (NumPy).

Everything here works on a whole batch at once: states are ``[batch, 2**n]`` arrays, gate
matrices are shared ``[d, d]`` or per-sample ``[batch, d, d]``, and a training step is a fixed
number of large array operations, independent of the batch size.

Gradients use the adjoint method. For a layer of single-qubit blocks ``G = (x)_q G_q`` the
derivative of ``<lam|G|psi_in>`` with respect to a gate inside ``G_q`` only needs the reduced
cross-density ``R_q[i, j] = sum_rest conj(lam[..i..]) psi_out[..j..]`` at the layer output,
because gates on different qubits commute: ``<lam|(A (x) G_rest)|psi_in> = tr((A G_q^dag) R_q)``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from qstore.core.engine.program import (
    CArray,
    DiagOp,
    FloatArray,
    GateOp,
    LayerOp,
    PermOp,
    Program,
)
from qstore.core.errors import BindingError, NonFiniteParameterError, ResourceLimitError

DTYPES = {"complex128": np.complex128, "complex64": np.complex64}


@dataclass
class LayerMats:
    """Matrices of one layer for one batch."""

    per_qubit: CArray  # [n, 2, 2] or [B, n, 2, 2] fused block per qubit (identity if none)
    group_gates: list[list[CArray]]  # per group, per position: [nb, 2, 2] or [B, nb, 2, 2]
    chunk_cache: dict[tuple[int, bool], CArray] = field(default_factory=dict)

    def chunk(self, start: int, size: int, dagger: bool = False) -> CArray:
        key = (start, dagger)
        k = self.chunk_cache.get(key)
        if k is None:
            pq = self.per_qubit
            k = pq[..., start, :, :]
            for q in range(start + 1, start + size):
                k = _kron(k, pq[..., q, :, :])
            if dagger:
                k = np.ascontiguousarray(_dagger(k))
            self.chunk_cache[key] = k
        return k


@dataclass
class Matrices:
    """Gate matrices of one batch: layers by ``id(op)``, other gates by ``GateRef.index``."""

    gate: dict[int, CArray]
    layer: dict[int, LayerMats]


def memory_limit_bytes() -> int:
    """Memory the simulator may use: ``QSTORE_MAX_MEMORY_GB`` or 60 % of physical memory."""
    env = os.environ.get("QSTORE_MAX_MEMORY_GB")
    if env:
        return int(float(env) * 2**30)
    try:
        phys = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        phys = 8 * 2**30
    return int(0.6 * phys)


def check_memory(n_qubits: int, batch: int, dtype: str, copies: int = 6) -> None:
    """Refuse, before allocating, a simulation that would not fit in memory."""
    itemsize = np.dtype(DTYPES[dtype]).itemsize
    need = copies * batch * (1 << n_qubits) * itemsize if n_qubits < 62 else float("inf")
    limit = memory_limit_bytes()
    if need > limit:
        raise ResourceLimitError(
            f"Simulating {n_qubits} qubits with a batch of {batch} needs about "
            f"{need / 2**30:.1f} GiB ({copies} state copies, {dtype}), more than the "
            f"{limit / 2**30:.1f} GiB allowed. Use fewer qubits, "
            "a smaller batch, dtype='complex64', or raise QSTORE_MAX_MEMORY_GB."
        )


class BindingLayout(Protocol):
    """What the binding functions below read of a compiled template: the column names
    (per-sample first), how many are per-sample, and the gate parameters as polynomials
    ``theta = theta_const + values @ theta_w + sum_m coeff_m * prod(values[:, cols_m])``.
    A :class:`~qstore.core.engine.program.Program` is one; simulator plugins have their own."""

    @property
    def names(self) -> tuple[str, ...]: ...

    @property
    def n_batched(self) -> int: ...

    @property
    def theta_const(self) -> FloatArray: ...

    @property
    def theta_w(self) -> FloatArray: ...

    @property
    def theta_mono(self) -> Sequence[tuple[tuple[int, ...], int, float]]: ...


def gate_parameters(prog: BindingLayout, values: FloatArray) -> FloatArray:
    """Gate parameters ``theta [batch, G]`` from the binding matrix ``values [batch, P]``."""
    theta = prog.theta_const + values @ prog.theta_w
    for cols, g, c in prog.theta_mono:
        prod = np.full(values.shape[0], c)
        for ci in cols:
            prod = prod * values[:, ci]
        theta[:, g] += prod
    if not np.isfinite(theta).all():
        raise NonFiniteParameterError(
            "A gate parameter evaluated to NaN or infinity; check the bindings for NaN/inf."
        )
    return theta


def build_matrices(prog: Program, theta: FloatArray, ctype: type) -> Matrices:
    """All matrices for this batch: one vectorised call per gate position of a block group."""
    n = prog.n_qubits
    bsz = theta.shape[0]
    gate: dict[int, CArray] = {}
    layer: dict[int, LayerMats] = {}
    eye: CArray = np.eye(2, dtype=ctype)
    for op in prog.ops:
        if isinstance(op, GateOp):
            ref = op.gate
            if ref.const_matrix is not None:
                gate[ref.index] = ref.const_matrix.astype(ctype)
            else:
                p = theta[:, list(ref.params)] if ref.batched else theta[0, list(ref.params)]
                gate[ref.index] = ref.spec.matrix_fn(p).astype(ctype)
        elif isinstance(op, LayerOp):
            shape = (bsz, n, 2, 2) if op.batched else (n, 2, 2)
            pq = np.broadcast_to(eye, shape).copy()
            group_gates = []
            for grp in op.groups:
                gl: list[CArray] = []
                m: CArray | None = None
                for k, spec in enumerate(grp.specs):
                    c = grp.const[k]
                    g: CArray
                    if c is not None:
                        g = c.astype(ctype)
                    elif grp.batched[k]:
                        g = spec.matrix_fn(theta[:, grp.params[k]]).astype(ctype)
                    else:
                        g = spec.matrix_fn(theta[0, grp.params[k]]).astype(ctype)
                    gl.append(g)
                    m = g if m is None else _mm2(g, m)
                assert m is not None
                pq[..., grp.qubits, :, :] = m
                group_gates.append(gl)
            layer[id(op)] = LayerMats(pq, group_gates)
    return Matrices(gate, layer)


def _mm2(a: CArray, b: CArray) -> CArray:
    """``a @ b`` for stacks of 2x2 matrices: elementwise when a stack is large (NumPy's matmul
    pays per 2x2 product there)."""
    if a.ndim <= 3 and b.ndim <= 3:
        return a @ b
    return a[..., :, 0, None] * b[..., 0, None, :] + a[..., :, 1, None] * b[..., 1, None, :]


def _kron(a: CArray, b: CArray) -> CArray:
    da, db = a.shape[-1], b.shape[-1]
    out = a[..., :, None, :, None] * b[..., None, :, None, :]
    return out.reshape(*out.shape[:-4], da * db, da * db)


def apply_chunk(state: CArray, k: CArray, n: int, start: int, size: int) -> CArray:
    """Apply ``k`` (``[d, d]`` or ``[B, d, d]``) to qubits ``start .. start+size-1``."""
    bsz = state.shape[0]
    d = 1 << size
    a = 1 << start
    r = 1 << (n - start - size)
    if k.ndim == 2:
        if r == 1:
            out = state.reshape(bsz * a, d) @ np.ascontiguousarray(k.T)
        else:
            out = np.matmul(k, state.reshape(bsz * a, d, r))
    elif r == 1:
        out = np.matmul(state.reshape(bsz, a, d), k.transpose(0, 2, 1))
    else:
        out = np.matmul(k[:, None], state.reshape(bsz, a, d, r))
    return out.reshape(bsz, -1)


def apply_gate(state: CArray, m: CArray, qubits: tuple[int, ...], n: int) -> CArray:
    """Apply a k-qubit matrix (shared or per-sample) to arbitrary qubits."""
    bsz = state.shape[0]
    k = len(qubits)
    axes = [1 + q for q in qubits]
    t = np.moveaxis(state.reshape((bsz,) + (2,) * n), axes, list(range(n + 1 - k, n + 1)))
    shape = t.shape
    flat = t.reshape(bsz, -1, 1 << k)
    out = flat @ (m.T if m.ndim == 2 else m.transpose(0, 2, 1))
    out = np.moveaxis(out.reshape(shape), list(range(n + 1 - k, n + 1)), axes)
    return np.ascontiguousarray(out).reshape(bsz, -1)


def _tile(m: CArray, times: int) -> CArray:
    return m if m.ndim == 2 else np.concatenate([m] * times, axis=0)


def _dagger(m: CArray) -> CArray:
    return np.conj(np.swapaxes(m, -1, -2))


def product_state(prog: Program, op: LayerOp, mats: Matrices, bsz: int, ctype: type) -> CArray:
    """The state after the first layer when it acts on |0...0>: a Kronecker product."""
    cols = mats.layer[id(op)].per_qubit[..., :, 0]  # [n, 2] or [B, n, 2]
    if cols.ndim == 2:
        cols = np.broadcast_to(cols, (bsz, *cols.shape))
    state = cols[:, 0, :]
    for q in range(1, prog.n_qubits):
        state = (state[:, :, None] * cols[:, q, None, :]).reshape(bsz, -1)
    return np.ascontiguousarray(state, dtype=ctype)


def run_ops(prog: Program, mats: Matrices, bsz: int, ctype: type) -> CArray:
    """Apply the whole program to |0...0> for a batch of ``bsz``."""
    n = prog.n_qubits
    ops = prog.ops
    if ops and isinstance(ops[0], LayerOp):
        state = product_state(prog, ops[0], mats, bsz, ctype)
        ops = ops[1:]
    else:
        state = np.zeros((bsz, 1 << n), dtype=ctype)
        state[:, 0] = 1.0
    for op in ops:
        state = apply_op(state, op, prog, mats, ctype)
    return state


def apply_op(
    state: CArray,
    op: object,
    prog: Program,
    mats: Matrices,
    ctype: type,
    inverse: bool = False,
    reps: int = 1,
) -> CArray:
    """Apply one op (or its inverse); ``reps`` stacked copies of the batch share matrices."""
    n = prog.n_qubits
    if isinstance(op, LayerOp):
        lm = mats.layer[id(op)]
        for start, size in op.chunks:  # chunks act on disjoint qubits: order is free
            k = lm.chunk(start, size, dagger=inverse)
            state = apply_chunk(state, _tile(k, reps), n, start, size)
        return state
    if isinstance(op, PermOp):
        if inverse:
            out = state[:, op.inv_src]
            return out if op.inv_phase is None else out * op.inv_phase
        out = state[:, op.src]
        return out if op.phase is None else out * op.phase
    if isinstance(op, DiagOp):
        return state * (np.conj(op.diag) if inverse else op.diag).astype(ctype)
    assert isinstance(op, GateOp)
    m = mats.gate[op.gate.index]
    if inverse:
        m = _dagger(m)
    return apply_gate(state, _tile(m, reps), op.gate.qubits, n)


# -- observables ---------------------------------------------------------------------------
def expectations(prog: Program, state: CArray) -> FloatArray:
    obs = prog.observables
    assert obs is not None
    if obs.real_diagonal is not None:
        probs = state.real**2 + state.imag**2
        return np.asarray(probs @ obs.real_diagonal.astype(probs.dtype), dtype=np.float64)
    out = np.zeros((state.shape[0], obs.n_obs))
    for gidx, c in obs.masks:
        partner = state if gidx is None else state[:, gidx]
        out += ((np.conj(partner) * state) @ c.astype(state.dtype)).real
    return out


def costate(prog: Program, state: CArray, cot: FloatArray) -> CArray:
    """``lam = sum_o cot_o O_o psi`` (the derivative of the weighted sum w.r.t. conj(psi))."""
    obs = prog.observables
    assert obs is not None
    if obs.real_diagonal is not None:
        return state * (cot @ obs.real_diagonal.T).astype(state.real.dtype)
    lam = np.zeros_like(state)
    for gidx, c in obs.masks:
        u = state * (cot.astype(state.dtype) @ np.ascontiguousarray(c.T, dtype=state.dtype))
        lam += u if gidx is None else u[:, gidx]
    return lam


# -- adjoint gradient ------------------------------------------------------------------------
def _reduced(lam: CArray, psi: CArray, n: int, qubits: tuple[int, ...]) -> CArray:
    """``R[b, i, j] = sum_rest conj(lam[b, ..i..]) psi[b, ..j..]`` over ``qubits``."""
    bsz = psi.shape[0]
    k = len(qubits)
    if qubits == tuple(range(qubits[0], qubits[0] + k)):
        a = 1 << qubits[0]
        d = 1 << k
        r = 1 << (n - qubits[0] - k)
        lv = lam.reshape(bsz, a, d, r)
        pv = psi.reshape(bsz, a, d, r)
        if a == 1:
            return np.matmul(np.conj(lv[:, 0]), pv[:, 0].transpose(0, 2, 1))
        if r == 1:
            return np.matmul(np.conj(lv[..., 0]).transpose(0, 2, 1), pv[..., 0])
        return np.matmul(np.conj(lv), pv.transpose(0, 1, 3, 2)).sum(axis=1)
    axes = [1 + q for q in qubits]
    lt = np.moveaxis(lam.reshape((bsz,) + (2,) * n), axes, list(range(1, k + 1)))
    pt = np.moveaxis(psi.reshape((bsz,) + (2,) * n), axes, list(range(1, k + 1)))
    lm = lt.reshape(bsz, 1 << k, -1)
    pm = pt.reshape(bsz, 1 << k, -1)
    return np.matmul(np.conj(lm), pm.transpose(0, 2, 1))


_PARTIAL_INDEX: dict[int, tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]] = {}


def _partial_index(size: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Row/column gathers so that ``rc[:, I, J].sum(-1)`` is every qubit's reduced matrix."""
    got = _PARTIAL_INDEX.get(size)
    if got is None:
        d = 1 << size
        rows = np.empty((size, 2, 2, d // 2), dtype=np.intp)
        cols = np.empty_like(rows)
        rest = np.arange(d // 2)
        for pos in range(size):
            shift = size - 1 - pos
            hi = (rest >> shift) << (shift + 1)
            lo = rest & ((1 << shift) - 1)
            for i in range(2):
                for j in range(2):
                    rows[pos, i, j] = hi | (i << shift) | lo
                    cols[pos, i, j] = hi | (j << shift) | lo
        got = (rows, cols)
        _PARTIAL_INDEX[size] = got
    return got


def _partials(rc: CArray, size: int) -> CArray:
    """Reduce a chunk cross-density ``[B, 2^size, 2^size]`` to ``[B, size, 2, 2]``."""
    rows, cols = _partial_index(size)
    return rc[:, rows, cols].sum(axis=-1)


def _layer_grads(
    op: LayerOp,
    lm: LayerMats,
    theta: FloatArray,
    lam: CArray,
    psi: CArray,
    n: int,
    gtheta: FloatArray,
) -> None:
    """Accumulate ``d/dtheta`` of every parameter in a layer from its output state/costate."""
    pqs = op.parameterized_qubits
    if not pqs:
        return
    bsz = psi.shape[0]
    r = np.zeros((bsz, n, 2, 2), dtype=psi.dtype)
    for start, size in op.chunks:
        qs = [q for q in pqs if start <= q < start + size]
        if not qs:
            continue
        rc = _reduced(lam, psi, n, tuple(range(start, start + size)))
        r[:, start : start + size] = _partials(rc, size)
    for grp, gl in zip(op.groups, lm.group_gates, strict=True):
        if not grp.parameterized:
            continue
        rg = r[:, grp.qubits]  # [B, nb, 2, 2]
        rg_sum: CArray | None = None  # summed over the batch, for parameters no row varies
        suffix: list[CArray | None] = [None] * len(gl)
        acc: CArray | None = None
        for k in range(len(gl) - 1, -1, -1):
            suffix[k] = acc
            acc = gl[k] if acc is None else _mm2(acc, gl[k])
        for k, spec in enumerate(grp.specs):
            if grp.const[k] is not None:
                continue
            idx = grp.params[k]
            p = theta[:, idx] if grp.batched[k] else theta[0, idx]
            gdag: CArray | None = None
            sk = suffix[k]
            sk_dag = None if sk is None else _dagger(sk)
            for pi in range(spec.n_params):
                a = spec.log_derivatives[pi]  # dG G^dagger, when constant
                if a is not None:
                    a = a.astype(psi.dtype, copy=False)
                else:
                    if gdag is None:
                        gdag = _dagger(gl[k])
                    a = _mm2(spec.derivative(p, pi).astype(psi.dtype), gdag)
                if sk is not None and sk_dag is not None:
                    a = _mm2(_mm2(sk, a), sk_dag)
                # d/dtheta = 2 Re tr(a R) with R[i, j] = <lam_i|psi_j>
                if grp.batched[k] or a.ndim > 3:
                    gtheta[:, idx[:, pi]] += 2.0 * np.real((a * rg).sum(axis=(-2, -1)))
                else:  # the same parameters and matrix for every row: sum R first
                    if rg_sum is None:
                        rg_sum = rg.sum(axis=0)
                    gtheta[0, idx[:, pi]] += 2.0 * np.real((a * rg_sum).sum(axis=(-2, -1)))


def vjp(
    prog: Program, theta: FloatArray, mats: Matrices, cot: FloatArray, ctype: type
) -> tuple[FloatArray, FloatArray]:
    """Expectations and ``d/dtheta`` of ``sum(cot * expectations)``: ``([B, n_obs], [B, G])``.

    A gate parameter that no row varies (it depends on shared values only) gets the sum over
    the batch in row 0 and zeros elsewhere: :func:`chain_rule` is linear per row, so the summed
    gradients of shared values are the same, for less work.

    Intermediate states are kept when they fit in memory (then only the costate is propagated
    backwards); otherwise the state is un-computed alongside the costate.
    """
    n = prog.n_qubits
    bsz = cot.shape[0]
    ops = prog.ops
    itemsize = np.dtype(ctype).itemsize
    keep = (len(ops) + 4) * bsz * (1 << n) * itemsize <= memory_limit_bytes() // 2
    states: list[CArray] = []
    if ops and isinstance(ops[0], LayerOp):
        psi = product_state(prog, ops[0], mats, bsz, ctype)
        first = 1
    else:
        psi = np.zeros((bsz, 1 << n), dtype=ctype)
        psi[:, 0] = 1.0
        first = 0
    if keep and first:  # states[i] is the state after ops[i]
        states.append(psi)
    for op in ops[first:]:
        psi = apply_op(psi, op, prog, mats, ctype)
        if keep:
            states.append(psi)
    values = expectations(prog, psi)
    lam = costate(prog, psi, cot)
    gtheta = np.zeros((bsz, prog.n_theta))
    both = None if keep else np.concatenate([psi, lam], axis=0)
    for i in range(len(ops) - 1, -1, -1):
        op = ops[i]
        if keep:
            psi = states[i]
        else:
            assert both is not None
            psi, lam = both[:bsz], both[bsz:]
        if isinstance(op, LayerOp):
            _layer_grads(op, mats.layer[id(op)], theta, lam, psi, n, gtheta)
        elif isinstance(op, GateOp) and op.gate.params:
            g = op.gate
            rq = _reduced(lam, psi, n, g.qubits)
            gk_dag = _dagger(mats.gate[g.index])
            p = theta[:, list(g.params)] if g.batched else theta[0, list(g.params)]
            for pi, tidx in enumerate(g.params):
                a = g.spec.log_derivatives[pi]  # dG G^dagger, when constant
                if a is not None:
                    a = a.astype(ctype, copy=False)
                else:
                    a = g.spec.derivative(p, pi).astype(ctype) @ gk_dag
                gtheta[:, tidx] += 2.0 * np.real(np.sum(a * rq, axis=(-2, -1)))
        if i > 0:
            if keep:
                lam = apply_op(lam, op, prog, mats, ctype, inverse=True)
            else:
                assert both is not None
                both = apply_op(both, op, prog, mats, ctype, inverse=True, reps=2)
    return values, gtheta


def chain_rule(prog: BindingLayout, values: FloatArray, gtheta: FloatArray) -> FloatArray:
    """Map ``d/dtheta [B, G]`` to ``d/dvalues [B, P]`` through the parameter expressions."""
    gv = gtheta @ prog.theta_w.T
    for cols, g, c in prog.theta_mono:
        for i, ci in enumerate(cols):
            other = np.full(values.shape[0], c)
            for j, cj in enumerate(cols):
                if j != i:
                    other = other * values[:, cj]
            gv[:, ci] += other * gtheta[:, g]
    return gv


def as_values(
    prog: BindingLayout, values: npt.ArrayLike | None, shared: npt.ArrayLike | None
) -> FloatArray:
    """Validate bindings and lay out the full ``[B, P]`` matrix (shared columns broadcast)."""
    nb = prog.n_batched
    ns = len(prog.names) - nb
    if values is None:
        if nb:
            raise BindingError(
                f"The circuit needs per-sample values for {list(prog.names[:nb])}; pass values=."
            )
        v = np.zeros((1, 0))
    else:
        v = np.asarray(values, dtype=np.float64)
        if v.ndim == 1 and nb:
            v = v[None, :]
        if v.ndim != 2 or v.shape[1] != nb:
            raise BindingError(
                f"values must have shape [batch, {nb}] with columns {list(prog.names[:nb])}; "
                f"got shape {np.shape(values)}."
            )
        if v.shape[0] == 0:
            raise BindingError("values has an empty batch (shape [0, P]); give at least one row.")
    s = np.zeros(0) if shared is None else np.asarray(shared, dtype=np.float64).reshape(-1)
    if s.shape[0] != ns:
        raise BindingError(
            f"Expected {ns} shared values for {list(prog.names[nb:])}, got {s.shape[0]}."
        )
    if not (np.isfinite(v).all() and np.isfinite(s).all()):
        bad = np.argwhere(~np.isfinite(v))
        where = f" (first at row {bad[0][0]}, column {prog.names[bad[0][1]]!r})" if bad.size else ""
        raise NonFiniteParameterError(
            f"Parameter bindings contain NaN or infinity{where}; all values must be finite."
        )
    if ns:
        v = np.concatenate([v, np.broadcast_to(s, (v.shape[0], ns))], axis=1)
    return v
