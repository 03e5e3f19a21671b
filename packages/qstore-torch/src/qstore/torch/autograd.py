"""Any Q-Store backend inside torch autograd.

The built-in ``torch`` path needs nothing from here: torch differentiates the engine itself.
Every other backend (``local``, qsim, Lightning, IonQ, third-party plugins) computes
expectations outside torch, so :class:`BackendExpectation` wraps it in a
``torch.autograd.Function`` whose backward asks the backend for a vector-Jacobian product: its
own ``vjp`` (the adjoint method on simulators that have it) or, for backends that only evaluate
expectations, :mod:`qstore.core.gradients` (parameter shift by default). Gradients flow to the
per-sample inputs and to the shared weights alike.

>>> import torch
>>> import qstore.core as qc
>>> c = qc.UnifiedCircuit(1).add_gate("RY", 0, "x").add_gate("RZ", 0, "w")
>>> run = BackendRun.create(c, "local", input_names=["x"], weight_names=["w"])
>>> x = torch.tensor([[0.3]], dtype=torch.float64, requires_grad=True)
>>> y = BackendExpectation.apply(x, torch.zeros(1, dtype=torch.float64), run)
>>> y.backward()
>>> round(float(x.grad), 6) == round(-float(torch.sin(torch.tensor(0.3))), 6)
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch.autograd.function import FunctionCtx, once_differentiable

from qstore.core import backends as core_backends
from qstore.core import gradients
from qstore.core.circuit import UnifiedCircuit
from qstore.core.observables import PauliSum, as_observables
from qstore.torch.encoding import LayerConfigError

__all__ = ["GRADIENT_METHODS", "BackendExpectation", "BackendRun", "resolve_backend"]

GRADIENT_METHODS = ("auto", "adjoint", "parameter_shift", "finite_diff", "spsa")

FloatArray = npt.NDArray[np.float64]


def resolve_backend(backend: Any, options: dict[str, Any] | None = None) -> Any:
    """A backend instance from a registry name (created with ``options``) or an instance."""
    if isinstance(backend, str):
        return core_backends.get(backend, **(options or {}))
    if options:
        raise LayerConfigError(
            "backend_options only apply when backend is given by name; configure the "
            f"instance {backend!r} directly."
        )
    missing = [m for m in ("expectation", "capabilities") if not hasattr(backend, m)]
    if missing:
        raise LayerConfigError(
            f"backend must be 'torch', a registered backend name or a backend object; "
            f"{backend!r} lacks {', '.join(missing)}."
        )
    return backend


@dataclass(frozen=True)
class BackendRun:
    """One circuit template on one backend: what :class:`BackendExpectation` needs.

    ``input_names`` are the per-sample columns, ``weight_names`` the shared ones. ``method``
    is resolved by :meth:`create`: ``'adjoint'`` means the backend's own ``vjp``.
    """

    backend: Any
    circuit: UnifiedCircuit
    observables: tuple[PauliSum, ...]
    input_names: tuple[str, ...]
    weight_names: tuple[str, ...]
    method: str
    gradient: Any  # a qstore.core.gradients.GradientMethod, or None for the backend's vjp
    shots: int | None = None

    @staticmethod
    def create(
        circuit: UnifiedCircuit,
        backend: Any,
        input_names: Sequence[str],
        weight_names: Sequence[str],
        observables: Any = None,
        gradient_method: str = "auto",
        shots: int | None = None,
        backend_options: dict[str, Any] | None = None,
    ) -> BackendRun:
        """Resolve the backend and the gradient method (``GRADIENT_METHODS``)."""
        be = resolve_backend(backend, backend_options)
        if gradient_method not in GRADIENT_METHODS:
            raise LayerConfigError(
                f"gradient_method must be one of {list(GRADIENT_METHODS)}, got {gradient_method!r}."
            )
        caps = be.capabilities
        has_vjp = bool(getattr(caps, "vjp", False)) and callable(getattr(be, "vjp", None))
        method = gradient_method
        if method == "auto":
            method = "adjoint" if has_vjp and shots is None else "parameter_shift"
        if method == "adjoint":
            if not has_vjp:
                raise LayerConfigError(
                    f"gradient_method='adjoint' needs a backend with a vjp; "
                    f"{getattr(be, 'name', be)!r} has none. Use 'parameter_shift'."
                )
            if shots is not None:
                raise LayerConfigError(
                    "The adjoint method is exact; it cannot be combined with shots. "
                    "Use gradient_method='parameter_shift' with shots."
                )
            grad = None
        else:
            grad = gradients.get(method, be, shots=shots)
        obs = tuple(as_observables(observables, circuit.n_qubits))
        return BackendRun(
            be, circuit, obs, tuple(input_names), tuple(weight_names), method, grad, shots
        )

    def _shared(self, weights: FloatArray) -> dict[str, float]:
        return dict(zip(self.weight_names, weights.tolist(), strict=True))

    def expectation(self, inputs: FloatArray, weights: FloatArray) -> FloatArray:
        """Expectations ``[B, n_obs]`` for per-sample ``inputs [B, P]`` and ``weights [S]``."""
        out = self.backend.expectation(
            self.circuit,
            list(self.observables),
            inputs,
            names=self.input_names,
            shared=self._shared(weights),
            shots=self.shots,
        )
        return np.asarray(out, dtype=np.float64).reshape(inputs.shape[0], len(self.observables))

    def vjp(
        self, inputs: FloatArray, weights: FloatArray, cotangent: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """``(d/dinputs [B, P], d/dweights [S])`` of ``sum(cotangent * expectation)``."""
        obs = list(self.observables)
        shared = self._shared(weights)
        if self.gradient is None:
            gv, gs = self.backend.vjp(
                self.circuit, obs, inputs, cotangent, names=self.input_names, shared=shared
            )
        else:
            gv, gs = self.gradient.vjp(
                self.circuit, obs, inputs, cotangent, names=self.input_names, shared=shared
            )
        gv = np.asarray(gv, dtype=np.float64).reshape(inputs.shape)
        gs = np.asarray(gs, dtype=np.float64).reshape(weights.shape)
        return gv, gs


def _numpy(t: torch.Tensor) -> FloatArray:
    return np.ascontiguousarray(t.detach().to("cpu", torch.float64).numpy())


class BackendExpectation(torch.autograd.Function):
    """``(inputs [B, P], weights [S], run) -> expectations [B, n_obs]`` through a backend.

    The output has the dtype and device of ``inputs``. Backward calls the backend once per
    step (a vector-Jacobian product), so batches cost one round trip, not one per sample.
    """

    @staticmethod
    def forward(
        ctx: FunctionCtx, inputs: torch.Tensor, weights: torch.Tensor, run: BackendRun
    ) -> torch.Tensor:
        x, w = _numpy(inputs), _numpy(weights)
        out = run.expectation(x, w)
        ctx.run = run  # type: ignore[attr-defined]
        ctx.arrays = (x, w)  # type: ignore[attr-defined]
        ctx.meta = (inputs.dtype, inputs.device, weights.dtype, weights.device)  # type: ignore[attr-defined]
        return torch.as_tensor(out, dtype=inputs.dtype, device=inputs.device)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, w = ctx.arrays
        in_dtype, in_device, w_dtype, w_device = ctx.meta
        gx, gw = ctx.run.vjp(x, w, _numpy(grad_out))
        grad_inputs = torch.as_tensor(gx, dtype=in_dtype, device=in_device)
        grad_weights = torch.as_tensor(gw, dtype=w_dtype, device=w_device)
        return (
            grad_inputs if ctx.needs_input_grad[0] else None,
            grad_weights if ctx.needs_input_grad[1] else None,
            None,
        )
