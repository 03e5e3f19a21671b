"""Any Q-Store backend inside torch autograd: thin wrappers over :mod:`qstore.core.adapter`.

The built-in ``torch`` path needs nothing from here: torch differentiates the engine itself.
Every other backend (``local``, qsim, Lightning, IonQ, third-party plugins) runs through
:class:`~qstore.core.adapter.ExpectationAdapter` (binding layout, shots, the gradient method and
what the forward pass keeps for the backward pass are decided there, once for both frameworks);
:class:`BackendExpectation` only moves tensors to NumPy and back. :class:`BackendUnitary` does
the same for the unitary that evolves quantum-state inputs on an external backend.

>>> import torch
>>> import qstore.core as qc
>>> from qstore.core.adapter import ExpectationAdapter
>>> c = qc.UnifiedCircuit(1).add_gate("RY", 0, "x").add_gate("RZ", 0, "w")
>>> adapter = ExpectationAdapter(c, "local", input_names=["x"], weight_names=["w"])
>>> x = torch.tensor([[0.3]], dtype=torch.float64, requires_grad=True)
>>> y = BackendExpectation.apply(x, torch.zeros(1, dtype=torch.float64), adapter)
>>> y.backward()
>>> round(float(x.grad), 6) == round(-float(torch.sin(torch.tensor(0.3))), 6)
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch.autograd.function import FunctionCtx, once_differentiable

from qstore.core.adapter import ExpectationAdapter, UnitaryAdapter

__all__ = ["BackendExpectation", "BackendUnitary"]


def _numpy(t: torch.Tensor) -> npt.NDArray[np.float64]:
    return np.ascontiguousarray(t.detach().to("cpu", torch.float64).numpy())


class BackendExpectation(torch.autograd.Function):
    """``(inputs [B, P], weights [S], adapter[, keep]) -> expectations [B, n_obs]``.

    The output has the dtype and device of ``inputs``. The forward pass is kept for the
    backward pass (one backend call each per training step; see :mod:`qstore.core.adapter`);
    ``keep=False`` (what callers pass under ``torch.no_grad()``) keeps nothing.
    """

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        inputs: torch.Tensor,
        weights: torch.Tensor,
        adapter: ExpectationAdapter,
        keep: bool = True,
    ) -> torch.Tensor:
        needed = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]  # type: ignore[attr-defined]
        fwd = adapter.forward(_numpy(inputs), _numpy(weights), keep=keep and bool(needed))
        ctx.adapter = adapter  # type: ignore[attr-defined]
        ctx.fwd = fwd  # type: ignore[attr-defined]
        ctx.meta = (inputs.dtype, inputs.device, weights.dtype, weights.device)  # type: ignore[attr-defined]
        return torch.as_tensor(fwd.values, dtype=inputs.dtype, device=inputs.device)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        in_dtype, in_device, w_dtype, w_device = ctx.meta
        gx, gw = ctx.adapter.vjp(ctx.fwd, _numpy(grad_out), inputs=ctx.needs_input_grad[0])
        return (
            torch.as_tensor(gx, dtype=in_dtype, device=in_device)
            if ctx.needs_input_grad[0]
            else None,
            torch.as_tensor(gw, dtype=w_dtype, device=w_device)
            if ctx.needs_input_grad[1]
            else None,
            None,
            None,
        )


class BackendUnitary(torch.autograd.Function):
    """``(weights [S], adapter) -> U(w)`` (complex ``[2**n, 2**n]``) on a backend.

    Complex128 for float64 weights, complex64 otherwise, on the device of ``weights``.
    """

    @staticmethod
    def forward(ctx: FunctionCtx, weights: torch.Tensor, adapter: UnitaryAdapter) -> torch.Tensor:
        w = _numpy(weights)
        ctx.adapter = adapter  # type: ignore[attr-defined]
        ctx.w = w  # type: ignore[attr-defined]
        ctx.meta = (weights.dtype, weights.device)  # type: ignore[attr-defined]
        cplx = torch.complex128 if weights.dtype == torch.float64 else torch.complex64
        return torch.as_tensor(adapter.unitary(w), dtype=cplx, device=weights.device)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_u: torch.Tensor) -> tuple[torch.Tensor | None, None]:
        dtype, device = ctx.meta
        g = grad_u.detach().to("cpu", torch.complex128).numpy()
        gw = ctx.adapter.vjp(ctx.w, g)
        return torch.as_tensor(gw, dtype=dtype, device=device).reshape(ctx.w.shape), None
