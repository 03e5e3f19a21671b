"""Amplitude encoding of classical features for torch; the layers' errors.

The encodings and their rules are written once in :mod:`qstore.core.templates` and shared with
the Keras layers: *angle* (feature ``j`` rotates qubit ``j % n_qubits``, chunks of ``n_qubits``
features spread over the trainable layers), *reupload* and *amplitude*.

**Amplitude encoding** (:func:`qstore.core.templates.amplitude_state`) of ``F <= 2**n``
features: the features, padded with zeros to ``2**n`` and divided by their Euclidean norm, are
the amplitudes of the state (basis state ``k`` has amplitude ``x_k / |x|``, qubit 0 the most
significant bit). An all-zero row becomes ``|0...0>``, with zero gradient.

>>> import torch
>>> amplitude_encode(torch.tensor([[3.0, 4.0], [0.0, 0.0]]), 1)
tensor([[0.6000+0.j, 0.8000+0.j],
        [1.0000+0.j, 0.0000+0.j]])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.autograd.function import once_differentiable

from qstore.core.errors import LayerConfigError, LayerInputError
from qstore.core.templates import (
    amplitude_pad,
    amplitude_scale,
    amplitude_vjp,
    check_amplitude_width,
    check_n_qubits,
)
from qstore.torch.engine import _to_numpy, compute_dtypes, numpy_eligible

__all__ = [
    "AmplitudeEncoding",
    "LayerConfigError",
    "LayerInputError",
    "amplitude_encode",
    "check_n_qubits",
]


def amplitude_encode(x: torch.Tensor, n_qubits: int) -> torch.Tensor:
    """States ``[*, 2**n_qubits]`` (complex) from features ``[*, F]`` with ``F <= 2**n_qubits``.

    Differentiable; float64 features give complex128 states, others complex64. On the CPU this is
    one autograd node computed with NumPy (:func:`qstore.core.templates.amplitude_scale`, with
    the closed-form gradient :func:`~qstore.core.templates.amplitude_vjp`); elsewhere, and
    under ``torch.compile`` or ``torch.func``, torch operations.
    """
    dim = 1 << n_qubits
    if x.is_complex():
        raise LayerInputError(
            "amplitude encoding takes real features; this input is already a complex state "
            f"(dtype {x.dtype}). Feed it to QuantumLayer or ExpectationValue directly."
        )
    if x.dim() < 1 or x.shape[-1] < 1:
        raise LayerInputError(
            f"amplitude encoding needs features of shape [batch, F], got {list(x.shape)}."
        )
    width = x.shape[-1]
    check_amplitude_width(width, n_qubits)
    real, cplx = compute_dtypes(x.dtype)
    x = x.to(real)
    if x.dim() == 2 and numpy_eligible(x, n_qubits):
        out: torch.Tensor = _AmplitudeEncode.apply(x, n_qubits)  # type: ignore[no-untyped-call]
        return out
    if width < dim:
        x = nn.functional.pad(x, (0, dim - width))
    norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    ok = norm > 0
    # where() on both branches: keep the unused branch finite so that its gradient is too
    scaled = x / torch.where(ok, norm, torch.ones_like(norm))
    ground = torch.zeros(dim, dtype=real, device=x.device)
    ground[0] = 1.0
    return torch.where(ok, scaled, ground).to(cplx)


class _AmplitudeEncode(torch.autograd.Function):
    """Amplitude encoding of CPU features ``[B, F]`` as one node: NumPy forward and the
    closed-form backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, n_qubits: int) -> torch.Tensor:
        feats = x.detach().numpy()
        scaled, inv_norm = amplitude_scale(feats)
        ctx.kept = (scaled, inv_norm)
        cplx = np.complex128 if feats.dtype == np.float64 else np.complex64
        return torch.from_numpy(amplitude_pad(scaled, inv_norm, n_qubits, cplx))

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        scaled, inv_norm = ctx.kept
        # the output is real-valued in a complex dtype: the features' gradient is the real part
        g = np.ascontiguousarray(_to_numpy(grad).real[:, : scaled.shape[1]])
        return torch.from_numpy(amplitude_vjp(scaled, inv_norm, g)), None


class AmplitudeEncoding(nn.Module):
    """Features ``[batch, F]`` to quantum states ``[batch, 2**n_qubits]`` (complex).

    Pads with zeros to ``2**n_qubits`` amplitudes and normalises; an all-zero row becomes
    ``|0...0>`` with zero gradient (see the module docstring).
    Its output is a *quantum state*: a following :class:`~qstore.torch.QuantumLayer` applies
    its trainable circuit to it and returns a state, and
    :class:`~qstore.torch.ExpectationValue` turns a state into expectations.

    >>> import torch
    >>> from qstore.torch import AmplitudeEncoding, ExpectationValue, QuantumLayer
    >>> model = torch.nn.Sequential(
    ...     AmplitudeEncoding(n_qubits=3), QuantumLayer(n_qubits=3, depth=2), ExpectationValue()
    ... )
    >>> model(torch.rand(4, 6)).shape
    torch.Size([4, 3])
    """

    def __init__(self, n_qubits: int) -> None:
        super().__init__()
        self.n_qubits = check_n_qubits(n_qubits)

    def extra_repr(self) -> str:
        return f"n_qubits={self.n_qubits}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return amplitude_encode(x, self.n_qubits)
