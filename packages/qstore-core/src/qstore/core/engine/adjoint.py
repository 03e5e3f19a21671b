"""The adjoint pass of the engine, written once against the engine's ``ArrayOps``.

The ``local`` backend runs it on NumPy, ``qstore-torch`` inside one ``torch.autograd.Function``
and ``qstore-tf`` inside one ``tf.custom_gradient``: a training step is then the forward pass,
which keeps the state after every op (:func:`trace`), and one backward sweep of a few large array
operations per op (:func:`backward`), never autograd over the many small operations of the
forward pass. Simulators that only return final states (qsim) start the sweep from those
(:func:`backward` with ``states=None`` un-computes the state alongside the costate).

Conventions. The costate of a real loss ``L`` is ``lam = dL/d conj(psi)``; for expectations
``L = sum_o cot_o <psi|O_o|psi>`` it is ``lam = sum_o cot_o O_o psi`` (:func:`costate`). For a
layer of single-qubit blocks ``G = (x)_q G_q``, gates on different qubits commute, so the
derivative with respect to a gate inside ``G_q`` needs only the reduced cross-density
``R_q[i, j] = sum_rest conj(lam[..i..]) psi[..j..]`` at the layer output:
``dL/dtheta = 2 Re sum_ij A_ij R_q[i, j]`` with ``A = S (dG G^dagger) S^dagger`` (``S``: the
gates after it in the block). Torch and TensorFlow hand a complex output's gradient as
``2 dL/d conj(psi)``; their wrappers halve it on the way in and double the input costate out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from qstore.core.engine.binding import chain_rule, gate_parameters
from qstore.core.engine.generic import (
    ArrayOps,
    LayerMatrices,
    Tensor,
    _ground_state,
    _program_const,
    _unstack,
    apply_op,
    dagger,
    expectations,
    gate_log_derivative,
    mm2,
    op_matrices,
    product_state,
    scope,
)
from qstore.core.engine.program import GateOp, LayerOp, Program
from qstore.core.validation import check_cotangent

__all__ = [
    "Trace",
    "backward",
    "costate",
    "trace",
    "trace_from_final",
    "value_and_vjp",
    "vjp_fn",
]


@dataclass(frozen=True)
class Trace:
    """What the forward pass leaves for the backward pass."""

    values: Tensor  # bindings [B, P]
    theta: Tensor  # gate parameters [B, G]
    mats: dict[int, Any]  # op matrices by id(op)
    states: list[Tensor] | None  # states[i]: the state after ops[i]; None: not kept
    final: Tensor  # [B, 2**n]
    has_initial: bool  # an initial state was given (its gradient is wanted)


def trace(
    ops: ArrayOps,
    prog: Program,
    values: Tensor,
    initial_state: Tensor | None = None,
    keep: bool = True,
) -> Trace:
    """Run ``prog`` for bindings ``values [B, P]``, keeping the state after every op.

    With ``keep=False`` only the final state is kept (the backward pass then un-computes).
    """
    with scope(ops, prog, ops.shape(values)[0]):
        return _trace(ops, prog, values, initial_state, keep)


def _trace(
    ops: ArrayOps, prog: Program, values: Tensor, initial_state: Tensor | None, keep: bool
) -> Trace:
    n = prog.n_qubits
    theta = gate_parameters(ops, prog, values)
    bsz = ops.shape(values)[0]
    oplist = prog.ops
    mats = op_matrices(ops, prog, theta, oplist)
    states: list[Tensor] = []
    if initial_state is not None:
        state = initial_state
        rest = oplist
    elif oplist and isinstance(oplist[0], LayerOp):
        state = product_state(ops, mats[id(oplist[0])], n, bsz)
        states.append(state)
        rest = oplist[1:]
    else:
        init = _program_const(prog, "generic.ground", lambda: _ground_state(n))
        state = ops.broadcast_to(ops.const(init, True), (bsz, 1 << n))
        rest = oplist
    for op in rest:
        state = apply_op(ops, prog, state, op, mats)
        if keep:
            states.append(state)
    return Trace(values, theta, mats, states if keep else None, state, initial_state is not None)


def trace_from_final(ops: ArrayOps, prog: Program, values: Tensor, final: Tensor) -> Trace:
    """A trace that holds only the final states ``[B, 2**n]``, computed elsewhere (e.g. by
    another simulator): :func:`backward` then un-computes the states alongside the costate."""
    theta = gate_parameters(ops, prog, values)
    return Trace(values, theta, op_matrices(ops, prog, theta, prog.ops), None, final, False)


def costate(ops: ArrayOps, prog: Program, state: Tensor, cot: Tensor) -> Tensor:
    """``lam = sum_o cot[:, o] O_o psi`` for the program's observables (``cot [B, n_obs]``)."""
    with scope(ops, prog, ops.shape(state)[0]):
        return _costate(ops, prog, state, cot)


def _costate(ops: ArrayOps, prog: Program, state: Tensor, cot: Tensor) -> Tensor:
    obs = prog.observables
    assert obs is not None
    if obs.real_diagonal is not None:
        dt = _program_const(
            prog, "adjoint.diag_t", lambda: np.ascontiguousarray(obs.real_diagonal.T)
        )
        return state * ops.to_complex(ops.matmul(cot, ops.const(dt, False)))
    lam = None
    ccot = ops.to_complex(cot)
    for i, (gidx, c) in enumerate(obs.masks):
        ct = _program_const(prog, f"adjoint.mask_t.{i}", lambda c=c: np.ascontiguousarray(c.T))
        u = state * ops.matmul(ccot, ops.const(ct, True))
        u = u if gidx is None else ops.take(u, gidx)
        lam = u if lam is None else lam + u
    assert lam is not None
    return lam


def _reduced(ops: ArrayOps, lam: Tensor, psi: Tensor, n: int, qubits: tuple[int, ...]) -> Tensor:
    """``R[b, i, j] = sum_rest conj(lam[b, ..i..]) psi[b, ..j..]`` (``[B, d, d]``)."""
    bsz = ops.shape(psi)[0]
    k = len(qubits)
    d = 1 << k
    if qubits == tuple(range(qubits[0], qubits[0] + k)):
        a = 1 << qubits[0]
        r = 1 << (n - qubits[0] - k)
        if a == 1:
            lv = ops.reshape(lam, (bsz, d, r))
            pv = ops.reshape(psi, (bsz, d, r))
            return ops.matmul(ops.conj(lv), ops.swap_last(pv))
        if r == 1:
            lv = ops.reshape(lam, (bsz, a, d))
            pv = ops.reshape(psi, (bsz, a, d))
            return ops.matmul(ops.swap_last(ops.conj(lv)), pv)
        # [B, d, a * r]: one product per sample with the long inner axis (not B * a small ones)
        lv = ops.reshape(ops.moveaxis(ops.reshape(lam, (bsz, a, d, r)), [2], [1]), (bsz, d, -1))
        pv = ops.reshape(ops.moveaxis(ops.reshape(psi, (bsz, a, d, r)), [2], [1]), (bsz, d, -1))
        return ops.matmul(ops.conj(lv), ops.swap_last(pv))
    axes = [1 + q for q in qubits]
    front = list(range(1, k + 1))
    lt = ops.moveaxis(ops.reshape(lam, (bsz,) + (2,) * n), axes, front)
    pt = ops.moveaxis(ops.reshape(psi, (bsz,) + (2,) * n), axes, front)
    lm = ops.reshape(lt, (bsz, d, -1))
    pm = ops.reshape(pt, (bsz, d, -1))
    return ops.matmul(ops.conj(lm), ops.swap_last(pm))


_PARTIAL_INDEX: dict[int, npt.NDArray[np.intp]] = {}


def _partial_index(size: int) -> npt.NDArray[np.intp]:
    """Flat gathers so that ``take(rc.flat, I).sum(-1)`` is every qubit's reduced matrix:
    ``[size, 2, 2, 2**size / 2]`` indices into a chunk's ``[2**size * 2**size]`` cross-density."""
    got = _PARTIAL_INDEX.get(size)
    if got is None:
        d = 1 << size
        flat = np.empty((size, 2, 2, d // 2), dtype=np.intp)
        rest = np.arange(d // 2)
        for pos in range(size):
            shift = size - 1 - pos
            hi = (rest >> shift) << (shift + 1)
            lo = rest & ((1 << shift) - 1)
            for i in range(2):
                for j in range(2):
                    flat[pos, i, j] = (hi | (i << shift) | lo) * d + (hi | (j << shift) | lo)
        got = _PARTIAL_INDEX[size] = flat
    return got


@dataclass(frozen=True)
class _Grads:
    """Contributions to ``d/dtheta``: real blocks ``[B, m]`` and the theta index of each column."""

    blocks: list[Tensor]
    index: list[npt.NDArray[np.intp]]


def _layer_grads(
    ops: ArrayOps,
    op: LayerOp,
    lm: LayerMatrices,
    theta: Tensor,
    lam: Tensor,
    psi: Tensor,
    n: int,
    out: _Grads,
) -> None:
    pqs = op.parameterized_qubits
    if not pqs:
        return
    bsz = ops.shape(psi)[0]
    parts: list[Tensor] = []
    covered: list[int] = []
    for start, size in op.chunks:
        if not any(start <= q < start + size for q in pqs):
            continue
        rc = _reduced(ops, lam, psi, n, tuple(range(start, start + size)))
        parts.append(ops.sum(ops.take(ops.reshape(rc, (bsz, -1)), _partial_index(size)), -1))
        covered.extend(range(start, start + size))
    r_all = parts[0] if len(parts) == 1 else ops.concat(parts, 1)  # [B, covered, 2, 2]
    per_q: dict[int, Tensor] | None = None
    for grp, gl in zip(op.groups, lm.group_gates, strict=True):
        if not grp.parameterized:
            continue
        if list(grp.qubit_list) == covered:  # the usual case: one group over the whole layer
            rg = r_all
        else:
            if per_q is None:
                per_q = dict(zip(covered, _unstack(ops, r_all, 1), strict=True))
            rg = ops.stack([per_q[q] for q in grp.qubit_list], 1)  # [B, nb, 2, 2]
        _group_grads(ops, grp, gl, theta, rg, out)


def _group_grads(
    ops: ArrayOps, grp: Any, gl: tuple[Tensor, ...], theta: Tensor, rg: Tensor, out: _Grads
) -> None:
    """Every parameter of one block group, from its reduced cross-densities ``rg [B, nb, 2, 2]``:
    ``2 Re sum_ij A_ij R_ij`` with ``A = S (dG G^dagger) S^dagger``. Generators shared by the
    batch are stacked and contracted with ``rg`` in one product."""
    nb = len(grp.qubit_list)
    suffix: list[Tensor | None] = [None] * len(gl)
    acc: Tensor | None = None
    for k in range(len(gl) - 1, -1, -1):
        suffix[k] = acc
        acc = gl[k] if acc is None else mm2(ops, acc, gl[k])
    shared: list[Tensor] = []
    shared_index: list[npt.NDArray[np.intp]] = []
    for k, spec in enumerate(grp.specs):
        if grp.const[k] is not None:
            continue
        idx = grp.params[k]
        sk = suffix[k]
        for pi in range(spec.n_params):
            a = gate_log_derivative(ops, spec, theta, idx, grp.batched[k], pi, gl[k])
            if sk is not None:
                a = mm2(ops, mm2(ops, sk, a), dagger(ops, sk))
            if len(ops.shape(a)) == 4:  # per sample: [B, nb, 2, 2]
                out.blocks.append(ops.sum(ops.real(a * rg), (-2, -1)))  # [B, nb]
                out.index.append(idx[:, pi])
            else:
                shared.append(ops.broadcast_to(a, (nb, 2, 2)) if len(ops.shape(a)) == 2 else a)
                shared_index.append(idx[:, pi])
    if shared:
        gens = shared[0][None] if len(shared) == 1 else ops.stack(shared, 0)  # [K, nb, 2, 2]
        contrib = ops.real(ops.einsum("knij,bnij->bkn", gens, rg))  # [B, K, nb]
        out.blocks.append(ops.reshape(contrib, (-1, len(shared) * nb)))
        out.index.append(np.concatenate(shared_index))


def _gate_grads(
    ops: ArrayOps,
    op: GateOp,
    m: Tensor,
    theta: Tensor,
    lam: Tensor,
    psi: Tensor,
    n: int,
    out: _Grads,
) -> None:
    g = op.gate
    rq = _reduced(ops, lam, psi, n, g.qubits)  # [B, d, d]
    idx = np.asarray([g.params], dtype=np.intp)
    for pi, tidx in enumerate(g.params):
        a = gate_log_derivative(ops, g.spec, theta, idx, g.batched, pi, m[..., None, :, :])
        a = a[..., 0, :, :] if len(ops.shape(a)) > 2 else a
        grad = ops.sum(ops.real(a * rq), (-2, -1))  # [B]
        out.blocks.append(ops.reshape(grad, (-1, 1)))
        out.index.append(np.asarray([tidx], dtype=np.intp))


def _scatter(prog: Program, index: list[npt.NDArray[np.intp]]) -> npt.NDArray[np.float64]:
    """``[M, G]`` matrix taking gradient columns to theta (factor 2 of the adjoint included)."""
    key = "adjoint.scatter." + ",".join(str(len(i)) for i in index)
    hit = prog.cache.get(key)
    if hit is None:
        cols = np.concatenate(index) if index else np.zeros(0, dtype=np.intp)
        hit = np.zeros((cols.size, prog.n_theta))
        hit[np.arange(cols.size), cols] = 2.0
        prog.cache[key] = hit
    return hit


def backward(ops: ArrayOps, prog: Program, tr: Trace, lam: Tensor) -> tuple[Tensor, Tensor | None]:
    """The adjoint sweep: ``(d/dvalues [B, P], d/d conj(initial state) or None)``.

    ``lam`` is the costate at the final state (see :func:`costate`).
    """
    with scope(ops, prog, ops.shape(tr.final)[0]):
        return _backward(ops, prog, tr, lam)


def _backward(ops: ArrayOps, prog: Program, tr: Trace, lam: Tensor) -> tuple[Tensor, Tensor | None]:
    n = prog.n_qubits
    oplist = prog.ops
    out = _Grads([], [])
    psi = tr.final
    for i in range(len(oplist) - 1, -1, -1):
        op = oplist[i]
        if tr.states is not None:
            psi = tr.states[i]  # the state after ops[i]
        if isinstance(op, LayerOp):
            _layer_grads(ops, op, tr.mats[id(op)], tr.theta, lam, psi, n, out)
        elif isinstance(op, GateOp) and op.gate.params:
            _gate_grads(ops, op, tr.mats[id(op)], tr.theta, lam, psi, n, out)
        if i > 0 or tr.has_initial:
            lam = apply_op(ops, prog, lam, op, tr.mats, inverse=True)
            if tr.states is None and i > 0:
                psi = apply_op(ops, prog, psi, op, tr.mats, inverse=True)
    if out.blocks:
        gtheta = ops.matmul(ops.concat(out.blocks, 1), ops.const(_scatter(prog, out.index), False))
        gvalues = chain_rule(ops, prog, tr.values, gtheta)
    else:
        gvalues = tr.values * 0.0
    return gvalues, (lam if tr.has_initial else None)


def vjp_fn(ops: ArrayOps, prog: Program, tr: Trace) -> Any:
    """The VJP of a NumPy trace as a function of the cotangent ``[B, n_obs]``: what backends
    return from ``value_and_vjp_fn`` (the forward pass kept, the backward pass later).

    ``finish(cotangent) -> (d/dvalues [B, n_batched], d/dshared [n_shared])`` (float64).
    """
    assert prog.observables is not None
    bsz, n_obs, nb = ops.shape(tr.final)[0], prog.observables.n_obs, prog.n_batched

    def finish(cotangent: Any) -> tuple[Any, Any]:
        cot = np.asarray(check_cotangent(cotangent, bsz, n_obs), dtype=ops.real_dtype)
        lam = costate(ops, prog, tr.final, cot)
        gv = np.asarray(backward(ops, prog, tr, lam)[0], dtype=np.float64)
        return gv[:, :nb], gv[:, nb:].sum(axis=0)

    return finish


def value_and_vjp(
    ops: ArrayOps, prog: Program, values: Tensor, cot: Tensor, keep: bool = True
) -> tuple[Tensor, Tensor]:
    """Expectations ``[B, n_obs]`` and ``d/dvalues [B, P]`` of ``sum(cot * expectations)``."""
    with scope(ops, prog, ops.shape(values)[0]):
        return _value_and_vjp(ops, prog, values, cot, keep)


def _value_and_vjp(
    ops: ArrayOps, prog: Program, values: Tensor, cot: Tensor, keep: bool
) -> tuple[Tensor, Tensor]:
    tr = trace(ops, prog, values, keep=keep)
    lam = costate(ops, prog, tr.final, cot)
    gv, _ = backward(ops, prog, tr, lam)
    return expectations(ops, prog, tr.final), gv
