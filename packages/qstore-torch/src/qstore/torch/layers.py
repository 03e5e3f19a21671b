"""Quantum ``nn.Module`` s: :class:`QuantumLayer`, :class:`CircuitLayer`, :class:`ExpectationValue`.

Rule (as in the Keras layers): **classical features in, expectations out** (``⟨Z_i⟩`` per qubit
by default); **quantum state in, quantum state out**. A quantum state is a complex tensor
``[batch, 2**n]`` (what :class:`~qstore.torch.AmplitudeEncoding` returns); real tensors are
classical features.

Execution: ``backend='torch'`` (the default) runs the core's engine on torch tensors, on the
device of the module, differentiated by torch autograd (``torch.compile`` and ``torch.func``
trace it). A training step's gradient is one adjoint node per circuit, which gives first
derivatives; for second derivatives use ``torch.func`` (``torch.func.hessian``), which traces
the circuit op by op (differentiating the adjoint node's gradient again raises).

Any other backend name (``'local'``, ``'qsim'``, ``'lightning'``, ``'ionq_simulator'`` ...) or
backend object runs through :mod:`qstore.core.adapter`, the adapter the Keras layers
share (:class:`~qstore.torch.autograd.BackendExpectation` wraps it in one autograd function):
gradients by the backend's adjoint VJP where it has one, parameter shift otherwise, or the
``gradient_method`` asked for. Quantum-state inputs (and ``encoding='amplitude'``) on an external
backend evolve by the circuit's unitary, computed on the backend and differentiated by the exact
rotation shift rule.

Precision follows the module: float32 parameters simulate in complex64, ``.double()`` in
complex128 (what ``torch.autograd.gradcheck`` needs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from qstore.core import templates
from qstore.core.adapter import (
    GRADIENT_METHODS,
    ExpectationAdapter,
    UnitaryAdapter,
    check_shots,
    check_state_options,
    resolve_backend,
    resolve_gradient,
)
from qstore.core.circuit import UnifiedCircuit
from qstore.core.engine import generic
from qstore.core.engine.program import Program, compile_program
from qstore.core.errors import QStoreError
from qstore.core.observables import PauliSum, as_observables
from qstore.torch import engine
from qstore.torch.autograd import BackendExpectation, BackendUnitary
from qstore.torch.encoding import (
    LayerConfigError,
    LayerInputError,
    amplitude_encode,
    check_n_qubits,
)

__all__ = [
    "ENCODINGS",
    "ENTANGLEMENTS",
    "CircuitLayer",
    "ExpectationValue",
    "LayerBindings",
    "QuantumLayer",
]

ENTANGLEMENTS = templates.ENTANGLEMENTS
ENCODINGS = templates.LAYER_ENCODINGS
TORCH_BACKEND = "torch"


@dataclass(frozen=True)
class LayerBindings:
    """The circuit a layer runs for an input, with its values: run them anywhere else.

    ``inputs [B, P]`` are the per-sample columns named ``input_names``; ``weights`` maps the
    shared symbols to the layer's current weights.

    >>> import torch
    >>> from qstore.core.backends import get
    >>> layer = QuantumLayer(n_qubits=2, depth=1).double()
    >>> x = torch.rand(3, 2, dtype=torch.float64)
    >>> b = layer.bindings(x)
    >>> ref = get("local").expectation(
    ...     b.circuit, None, b.inputs.numpy(), names=b.input_names, shared=b.weights
    ... )
    >>> bool(torch.allclose(layer(x), torch.from_numpy(ref)))
    True
    """

    circuit: UnifiedCircuit
    input_names: tuple[str, ...]
    inputs: torch.Tensor
    weights: dict[str, float]


class _Template:
    """A circuit with its column layout, compiled on first use for each way it runs."""

    def __init__(
        self,
        circuit: UnifiedCircuit,
        input_names: Sequence[str],
        weight_names: Sequence[str],
        observables: Sequence[PauliSum],
    ) -> None:
        self.circuit = circuit
        self.input_names = tuple(input_names)
        self.weight_names = tuple(weight_names)
        self.observables = tuple(observables)
        self.n_observables = len(self.observables)
        self._programs: dict[bool, Program] = {}
        self._adapters: dict[int, ExpectationAdapter] = {}
        self._unitaries: dict[int, UnitaryAdapter] = {}
        self._measure: Program | None = None

    def program(self, with_observables: bool) -> Program:
        prog = self._programs.get(with_observables)
        return prog if prog is not None else self._add_program(with_observables)

    @torch.compiler.disable  # type: ignore[untyped-decorator]
    def _add_program(self, with_observables: bool) -> Program:
        prog = _compile(
            self.circuit,
            self.input_names,
            self.weight_names,
            self.observables if with_observables else None,
        )
        self._programs[with_observables] = prog
        return prog

    def adapter(self, backend: Any, gradient_method: str, shots: int | None) -> ExpectationAdapter:
        """The core adapter of this circuit on an external ``backend`` (built once)."""
        hit = self._adapters.get(id(backend))
        if hit is None or hit.backend is not backend:
            hit = ExpectationAdapter(
                self.circuit,
                backend,
                self.input_names,
                self.weight_names,
                list(self.observables),
                gradient_method=gradient_method,
                shots=shots,
            )
            self._adapters[id(backend)] = hit
        return hit

    def measure(self) -> Program:
        """The observables alone (no gates), to measure a state evolved elsewhere."""
        if self._measure is None:
            circuit = UnifiedCircuit(self.circuit.n_qubits)
            self._measure = _compile(circuit, (), (), self.observables)
        return self._measure

    def unitary(self, backend: Any) -> UnitaryAdapter:
        """The core adapter of this (weights-only) circuit's unitary on ``backend``."""
        hit = self._unitaries.get(id(backend))
        if hit is None:
            hit = UnitaryAdapter.on_backend(self.circuit, backend, self.weight_names)
            self._unitaries[id(backend)] = hit
        return hit


def _compile(
    circuit: UnifiedCircuit,
    names: Sequence[str],
    shared: Sequence[str],
    observables: Sequence[PauliSum] | None,
) -> Program:
    """Compile, then run once on NumPy with a single row: this fills every constant cache of
    the program (ground state, index tables, gate Fourier tables) in eager mode, so that code
    traced later by ``torch.compile`` finds them and stays one graph."""
    prog = compile_program(circuit, names, shared, observables)
    ops = generic.NumpyOps(np.complex64)
    values = np.zeros((1, len(prog.names)), dtype=np.float32)
    if observables is None:
        generic.run(ops, prog, values)
    else:
        generic.forward(ops, prog, values)
    return prog


def _check_backend_args(backend: Any, gradient_method: str, shots: int | None) -> None:
    check_shots(shots)
    if gradient_method not in GRADIENT_METHODS:
        raise LayerConfigError(
            f"gradient_method must be one of {list(GRADIENT_METHODS)}, got {gradient_method!r}."
        )
    if isinstance(backend, str) and backend == TORCH_BACKEND:
        if shots is not None:
            raise LayerConfigError(
                "The 'torch' backend is exact and has no shots; pick a sampling backend "
                "(e.g. backend='local') to use shots."
            )
        if gradient_method not in ("auto", "adjoint"):
            raise LayerConfigError(
                "The 'torch' backend is differentiated by torch autograd; gradient_method "
                f"{gradient_method!r} applies to other backends only (e.g. backend='local')."
            )


class _QuantumModule(nn.Module):
    """Backend handling and execution shared by the layers (internal)."""

    def __init__(
        self,
        backend: Any,
        gradient_method: str,
        shots: int | None,
        backend_options: Mapping[str, Any] | None,
    ) -> None:
        super().__init__()
        _check_backend_args(backend, gradient_method, shots)
        self.gradient_method = gradient_method
        self.shots = shots
        self.backend_options = dict(backend_options or {})
        self._backend_spec = backend
        self._backend: Any = None
        if backend != TORCH_BACKEND:
            self._backend = resolve_backend(backend, self.backend_options)
            resolve_gradient(self._backend, gradient_method, shots)  # refuse bad combinations now
        elif self.backend_options:
            raise LayerConfigError("backend_options do not apply to the 'torch' backend.")
        self._templates: dict[Any, _Template] = {}

    @property
    def backend(self) -> str:
        """``'torch'`` or the name of the external backend."""
        if self._backend_spec == TORCH_BACKEND:
            return TORCH_BACKEND
        return str(getattr(self._backend_obj(), "name", self._backend_spec))

    def _backend_obj(self) -> Any:
        if self._backend is None:
            self._backend = resolve_backend(self._backend_spec, self.backend_options)
        return self._backend

    @property
    def uses_torch_engine(self) -> bool:
        return isinstance(self._backend_spec, str) and self._backend_spec == TORCH_BACKEND

    # Compiled programs and backend objects are caches: not pickled, rebuilt on first use.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_templates"] = {}
        if isinstance(self._backend_spec, str):
            state["_backend"] = None
        return state

    @torch.compiler.disable  # type: ignore[untyped-decorator]
    def _add_template(self, key: Any, make: Any) -> _Template:
        tpl = self._templates.get(key)
        if tpl is None:
            tpl = make()
            self._templates[key] = tpl
        return tpl

    def _template(self, key: Any, make: Any) -> _Template:
        tpl = self._templates.get(key)
        return tpl if tpl is not None else self._add_template(key, make)

    def _execute(
        self,
        tpl: _Template,
        inputs: torch.Tensor,
        weights: torch.Tensor,
        state: torch.Tensor | None = None,
        want_state: bool = False,
    ) -> torch.Tensor:
        """Expectations ``[B, n_obs]`` (or final states) for ``inputs [B, P]``, ``weights [S]``."""
        real, cplx = engine.compute_dtypes(weights.dtype)
        inputs = inputs.to(real)
        w = weights.to(real).reshape(1, -1)
        if self.uses_torch_engine:
            if state is not None:
                state = state.to(cplx)
            if want_state:
                return engine.final_state(tpl.program(False), inputs, state, w.reshape(-1))
            out = engine.expectations(tpl.program(True), inputs, state, w.reshape(-1))
        elif state is not None:
            # A state evolves by the circuit's unitary, computed on the backend (core adapter).
            try:
                check_state_options(self.gradient_method, self.shots)
            except LayerConfigError as exc:
                raise LayerInputError(str(exc)) from None
            u = BackendUnitary.apply(w.reshape(-1), tpl.unitary(self._backend_obj()))  # type: ignore[no-untyped-call]
            final: torch.Tensor = state.to(cplx) @ u.to(cplx).transpose(0, 1)
            if want_state:
                return final
            out = engine.expectations(tpl.measure(), inputs[:, :0], final)
        else:
            adapter = tpl.adapter(self._backend_obj(), self.gradient_method, self.shots)
            keep = torch.is_grad_enabled()  # nothing to keep for inference
            out = BackendExpectation.apply(inputs, w.reshape(-1), adapter, keep)  # type: ignore[no-untyped-call]
        return out if out.dtype == weights.dtype else out.to(weights.dtype)

    def _check_device(self, x: torch.Tensor, ref: torch.Tensor) -> None:
        if x.device != ref.device:
            raise LayerInputError(
                f"The input is on {x.device} but the layer's parameters are on {ref.device}; "
                "move one of them (e.g. layer.to(x.device))."
            )


def _state_width(x: torch.Tensor, n_qubits: int | None, what: str) -> int:
    """Validate a quantum-state input ``[*, 2**n]``; returns n."""
    dim = x.shape[-1] if x.dim() else 0
    n = dim.bit_length() - 1
    if x.dim() < 1 or dim < 2 or dim != 1 << n:
        raise LayerInputError(
            f"{what} got a complex tensor of shape {list(x.shape)}; a quantum state must have "
            "shape [batch, 2**n_qubits]."
        )
    if n_qubits is not None and n != n_qubits:
        raise LayerInputError(
            f"{what} acts on {n_qubits} qubits, so a state input must have 2**{n_qubits} = "
            f"{1 << n_qubits} amplitudes; got {dim} (a {n}-qubit state)."
        )
    return n


class QuantumLayer(_QuantumModule):
    """A trainable quantum circuit as an ``nn.Module``: ``[batch, features] -> [batch, n_obs]``.

    Circuit (the framework layers' shared template, :func:`qstore.core.templates.layer_circuit`,
    so the Keras ``QuantumLayer`` builds the same one): ``depth`` layers of trainable
    ``RY(w[l, q, 0])`` and ``RZ(w[l, q, 1])`` on every qubit followed by entangling CNOTs, with the
    encoded features before them; the output is the expectation of each observable (``⟨Z_i⟩``
    per qubit by default).

    Args:
        n_qubits: qubits of the circuit.
        depth: trainable layers (at least 1).
        backend: ``'torch'`` (native engine, torch autograd, any device), a backend name from
            :func:`qstore.core.backends.available` or a backend object.
        entanglement: ``'linear'`` (``(0,1), (1,2), ..., (n-2,n-1)``), ``'circular'`` (the same
            and ``(n-1, 0)`` for ``n > 2``) or ``'full'`` (every ``(i, j)``, ``i < j``).
        encoding: ``'angle'``: feature ``j`` is a rotation angle on qubit ``j % n_qubits``; any
            number of features, in chunks of ``n_qubits`` spread over the trainable layers
            (:mod:`qstore.core.templates`). ``'reupload'``: every chunk again before every
            trainable layer, the angle on qubit ``q`` before layer ``l`` scaled by the trainable
            ``input_scaling[l, q]`` (initialised to 1). ``'amplitude'``: features as amplitudes
            (``F <= 2**n_qubits``, zero-padded and normalised; an all-zero row becomes
            ``|0...0>`` with zero gradient; see :func:`qstore.core.templates.amplitude_state`).
            The same encodings, circuits and rules as the Keras ``QuantumLayer``.
        observables: ``None`` (``Z`` on every qubit), or a list of Q-Store, Cirq or Qiskit
            observables (``[cirq.Z] * n`` means ``Z`` on qubit ``i`` for entry ``i``).
        gradient_method: for external backends: ``'auto'`` (the backend's adjoint VJP if it has
            one and ``shots`` is None, else parameter shift), ``'adjoint'``,
            ``'parameter_shift'``, ``'finite_diff'`` or ``'spsa'``
            (:func:`qstore.core.adapter.resolve_gradient`).
        shots: for sampling backends: shots per expectation (``None``: exact), in the forward
            pass and the gradient.
        backend_options: options for creating a backend given by name.

    Inputs: real features ``[*, F]`` (any ``F >= 1``; ``F <= 2**n`` for amplitude encoding), or a
    complex quantum state ``[*, 2**n]``, to which only the trainable layers are applied and whose
    final state is returned (quantum state in, quantum state out).

    Parameters: ``weights`` ``[depth, n_qubits, 2]``, uniform in ``[0, 2π)`` from torch's RNG
    (``torch.manual_seed`` makes it reproducible); ``input_scaling`` ``[depth, n_qubits]`` for
    ``'reupload'``.

    >>> import torch
    >>> from torch import nn
    >>> from qstore.torch import QuantumLayer
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(QuantumLayer(n_qubits=8, depth=4), nn.Linear(8, 10))
    >>> model(torch.rand(32, 64)).shape
    torch.Size([32, 10])
    """

    def __init__(
        self,
        n_qubits: int,
        depth: int = 2,
        backend: Any = TORCH_BACKEND,
        entanglement: str = "linear",
        encoding: str = "angle",
        observables: Any = None,
        *,
        gradient_method: str = "auto",
        shots: int | None = None,
        backend_options: Mapping[str, Any] | None = None,
    ) -> None:
        spec = templates.LayerSpec.create(n_qubits, depth, entanglement, encoding)
        if spec.encoding == "amplitude" and backend != TORCH_BACKEND:
            check_state_options(gradient_method, shots)
        super().__init__(backend, gradient_method, shots, backend_options)
        self.spec = spec
        self.n_qubits = n_qubits = spec.n_qubits
        self.depth = depth = spec.depth
        self.entanglement = spec.entanglement
        self.encoding = encoding = spec.encoding
        try:
            self.observables: tuple[PauliSum, ...] = tuple(as_observables(observables, n_qubits))
        except QStoreError as exc:
            raise LayerConfigError(f"Invalid observables for {n_qubits} qubits: {exc}") from exc
        self.weights = nn.Parameter(torch.empty(depth, n_qubits, 2))
        self.input_scaling: nn.Parameter | None = None
        if encoding == "reupload":
            self.input_scaling = nn.Parameter(torch.empty(depth, n_qubits))
        self.reset_parameters()

    @property
    def n_observables(self) -> int:
        """Outputs per sample for classical inputs."""
        return len(self.observables)

    def reset_parameters(self) -> None:
        """Weights uniform in ``[0, 2π)``, input scaling 1."""
        with torch.no_grad():
            nn.init.uniform_(self.weights, 0.0, 2 * math.pi)
            if self.input_scaling is not None:
                nn.init.ones_(self.input_scaling)

    def extra_repr(self) -> str:
        return (
            f"n_qubits={self.n_qubits}, depth={self.depth}, backend={self.backend!r}, "
            f"entanglement={self.entanglement!r}, encoding={self.encoding!r}, "
            f"n_observables={self.n_observables}"
        )

    # -- the circuit ------------------------------------------------------------------------
    def weight_names(self) -> tuple[str, ...]:
        """Symbols of ``weights.reshape(-1)``: ``w_{layer}_{qubit}_{0: RY, 1: RZ}``."""
        return tuple(templates.weight_names(self.n_qubits, self.depth))

    def circuit(self, n_features: int | None = None) -> UnifiedCircuit:
        """The circuit this layer runs for ``n_features`` input features.

        ``None`` (or amplitude encoding) gives the trainable part only, which is what runs on a
        state input. Input symbols are ``x_{j}`` (angle) or ``x_{layer}_{j}`` (reupload: feature
        ``j`` times its input scaling before that layer); weights are ``w_{layer}_{qubit}_{k}``.
        """
        return self._build(n_features)[0]

    def _build(self, n_features: int | None) -> tuple[UnifiedCircuit, list[str]]:
        c, names, _ = self.spec.circuit(n_features)
        return c, names

    def _features_template(self, n_features: int) -> _Template:
        def make() -> _Template:
            c, names = self._build(n_features)
            return _Template(c, names, self.weight_names(), self.observables)

        return self._template(("features", n_features), make)

    def _state_template(self) -> _Template:
        def make() -> _Template:
            return _Template(self._build(None)[0], (), self.weight_names(), self.observables)

        return self._template(("state",), make)

    def _columns(self, x: torch.Tensor) -> torch.Tensor:
        """Per-sample binding columns ``[B, P]`` from features ``[B, F]``."""
        if self.encoding == "reupload":
            assert self.input_scaling is not None
            qubits = torch.as_tensor(self.spec.scaling_qubits(x.shape[-1]), device=x.device)
            scale = self.input_scaling[:, qubits]
            return (x[:, None, :] * scale.to(x.dtype)[None]).reshape(x.shape[0], -1)
        return x

    def _features(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        if x.dim() < 1 or x.shape[-1] < 1:
            raise LayerInputError(
                f"QuantumLayer expects features of shape [batch, features] with at least one "
                f"feature, got shape {list(x.shape)}."
            )
        real = engine.compute_dtypes(self.weights.dtype)[0]
        lead = tuple(x.shape[:-1])
        return x.reshape(-1, x.shape[-1]).to(real), lead

    def bindings(self, x: torch.Tensor) -> LayerBindings:
        """The circuit and values this layer runs for features ``x [B, F]`` (detached)."""
        if x.is_complex() or self.encoding == "amplitude":
            raise LayerInputError(
                "bindings() describes classical angle/reupload inputs; amplitude-encoded and "
                "state inputs have no circuit parameters for the state itself."
            )
        flat, _ = self._features(x)
        tpl = self._features_template(flat.shape[-1])
        with torch.no_grad():
            cols = self._columns(flat)
        w = self.weights.detach().reshape(-1).tolist()
        return LayerBindings(
            tpl.circuit.copy(),
            tpl.input_names,
            cols.detach(),
            dict(zip(tpl.weight_names, w, strict=True)),
        )

    # -- forward ----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Expectations ``[*, n_observables]`` for features ``[*, F]``, or the final state
        ``[*, 2**n]`` for a complex state input."""
        self._check_device(x, self.weights)
        weights = self.weights.reshape(-1)
        if x.is_complex():
            _state_width(x, self.n_qubits, "QuantumLayer")
            lead = tuple(x.shape[:-1])
            state = x.reshape(-1, x.shape[-1])
            if state.shape[0] == 0:
                return state.new_zeros((*lead, 1 << self.n_qubits))
            cols = state.new_zeros((state.shape[0], 0), dtype=self.weights.dtype)
            out = self._execute(self._state_template(), cols, weights, state, want_state=True)
            return out.reshape(*lead, out.shape[-1])
        flat, lead = self._features(x)
        if flat.shape[0] == 0:
            return self.weights.new_zeros((*lead, self.n_observables))
        if self.encoding == "amplitude":
            state = amplitude_encode(flat, self.n_qubits)
            cols = flat.new_zeros((flat.shape[0], 0))
            out = self._execute(self._state_template(), cols, weights, state)
        else:
            tpl = self._features_template(flat.shape[-1])
            out = self._execute(tpl, self._columns(flat), weights)
        return out.reshape(*lead, self.n_observables)


class CircuitLayer(_QuantumModule):
    """Any :class:`~qstore.core.UnifiedCircuit` as a layer: named input and weight symbols.

    ``input_symbols`` are fed per sample from the columns of the input ``[*, len(inputs)]``
    (in that order); ``weight_symbols`` (default: every other symbol, in order of first
    appearance) become the ``nn.Parameter`` ``weights``. Symbols may sit in expressions
    (``2*theta + 0.1``, ``x * w``). Without input symbols, ``forward()`` takes no input (batch
    of one) or a complex state ``[*, 2**n]``, which returns the final state.

    Args:
        circuit: the circuit (copied; later changes to it do not affect the layer).
        input_symbols: per-sample symbols, in input column order.
        weight_symbols: trainable symbols; ``None``: all symbols not in ``input_symbols``.
        observables: as for :class:`QuantumLayer` (``None``: ``Z`` on every qubit).
        initial_weights: a mapping symbol -> value or a sequence in ``weight_symbols`` order;
            default uniform in ``[0, 2π)``.
        backend, gradient_method, shots, backend_options: as for :class:`QuantumLayer`.

    >>> import torch
    >>> import qstore.core as qc
    >>> c = qc.UnifiedCircuit(2).add_gate("RY", 0, "x").add_gate("CNOT", [0, 1])
    >>> _ = c.add_gate("RX", 1, qc.Parameter("x") * qc.Parameter("w"))
    >>> layer = CircuitLayer(c, input_symbols=["x"], initial_weights={"w": 0.5})
    >>> layer(torch.rand(5, 1)).shape
    torch.Size([5, 2])
    """

    def __init__(
        self,
        circuit: UnifiedCircuit,
        input_symbols: Sequence[str] = (),
        weight_symbols: Sequence[str] | None = None,
        observables: Any = None,
        backend: Any = TORCH_BACKEND,
        *,
        initial_weights: Mapping[str, float] | Sequence[float] | torch.Tensor | None = None,
        gradient_method: str = "auto",
        shots: int | None = None,
        backend_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(circuit, UnifiedCircuit):
            raise LayerConfigError(
                f"circuit must be a qstore.core.UnifiedCircuit, got {type(circuit).__name__}; "
                "convert Cirq/Qiskit circuits with UnifiedCircuit.from_cirq / from_qiskit."
            )
        if isinstance(input_symbols, str):
            raise LayerConfigError(
                f"input_symbols must be a sequence of names, not the string {input_symbols!r}."
            )
        super().__init__(backend, gradient_method, shots, backend_options)
        circuit = circuit.without_measurements()
        symbols = list(circuit.parameters)
        inputs = tuple(str(s) for s in input_symbols)
        unknown = [s for s in inputs if s not in symbols]
        if unknown:
            raise LayerConfigError(
                f"input_symbols {unknown} do not occur in the circuit; its symbols are {symbols}."
            )
        if weight_symbols is None:
            weights = tuple(s for s in symbols if s not in inputs)
        else:
            if isinstance(weight_symbols, str):
                raise LayerConfigError(
                    "weight_symbols must be a sequence of names, not the string "
                    f"{weight_symbols!r}."
                )
            weights = tuple(str(s) for s in weight_symbols)
            unknown = [s for s in weights if s not in symbols]
            both = sorted(set(weights) & set(inputs))
            if unknown or both:
                raise LayerConfigError(
                    f"weight_symbols {unknown or both} "
                    + ("do not occur in the circuit" if unknown else "are also input_symbols")
                    + f"; the circuit's symbols are {symbols}."
                )
            unbound = [s for s in symbols if s not in inputs and s not in weights]
            if unbound:
                raise LayerConfigError(
                    f"The circuit's symbols {unbound} are neither inputs nor weights; add them "
                    "to input_symbols or weight_symbols."
                )
        if len(set(inputs)) != len(inputs) or len(set(weights)) != len(weights):
            raise LayerConfigError("input_symbols and weight_symbols must not repeat a name.")
        self.n_qubits = circuit.n_qubits
        self.input_symbols = inputs
        self.weight_symbols = weights
        try:
            self.observables: tuple[PauliSum, ...] = tuple(
                as_observables(observables, circuit.n_qubits)
            )
        except QStoreError as exc:
            raise LayerConfigError(f"Invalid observables: {exc}") from exc
        self._circuit = circuit.copy()
        self.weights = nn.Parameter(torch.empty(len(weights)))
        self.reset_parameters()
        if initial_weights is not None:
            self._set_initial(initial_weights)

    @property
    def n_observables(self) -> int:
        return len(self.observables)

    @property
    def circuit(self) -> UnifiedCircuit:
        """A copy of the layer's circuit."""
        return self._circuit.copy()

    def reset_parameters(self) -> None:
        """Weights uniform in ``[0, 2π)``."""
        with torch.no_grad():
            nn.init.uniform_(self.weights, 0.0, 2 * math.pi)

    def _set_initial(self, init: Mapping[str, float] | Sequence[float] | torch.Tensor) -> None:
        if isinstance(init, Mapping):
            unknown = sorted(set(init) - set(self.weight_symbols))
            if unknown:
                raise LayerConfigError(
                    f"initial_weights names {unknown} are not weight symbols "
                    f"{list(self.weight_symbols)}."
                )
            with torch.no_grad():
                for k, v in init.items():
                    self.weights[self.weight_symbols.index(k)] = float(v)
            return
        t = torch.as_tensor(init, dtype=self.weights.dtype).reshape(-1)
        if t.numel() != len(self.weight_symbols):
            raise LayerConfigError(
                f"initial_weights has {t.numel()} values; the layer has "
                f"{len(self.weight_symbols)} weights {list(self.weight_symbols)}."
            )
        with torch.no_grad():
            self.weights.copy_(t)

    def extra_repr(self) -> str:
        return (
            f"n_qubits={self.n_qubits}, inputs={list(self.input_symbols)}, "
            f"n_weights={len(self.weight_symbols)}, backend={self.backend!r}, "
            f"n_observables={self.n_observables}"
        )

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_circuit"] = self._circuit.copy()  # without compiled-program caches
        return state

    def _tpl(self) -> _Template:
        def make() -> _Template:
            return _Template(
                self._circuit, self.input_symbols, self.weight_symbols, self.observables
            )

        return self._template("circuit", make)

    def forward(self, x: torch.Tensor | None = None) -> torch.Tensor:
        """Expectations ``[*, n_observables]`` for inputs ``[*, len(input_symbols)]``; a state
        ``[*, 2**n]`` (no input symbols) gives the final state."""
        p = len(self.input_symbols)
        real = engine.compute_dtypes(self.weights.dtype)[0]
        if x is None:
            if p:
                raise LayerInputError(
                    f"This layer takes inputs for {list(self.input_symbols)}: call it with a "
                    f"tensor of shape [batch, {p}]."
                )
            x = self.weights.new_zeros((1, 0), dtype=real)
        self._check_device(x, self.weights)
        if x.is_complex():
            if p:
                raise LayerInputError(
                    f"A quantum-state input leaves the input symbols {list(self.input_symbols)} "
                    "without values; give real inputs [batch, "
                    f"{p}] or build the layer without input_symbols."
                )
            _state_width(x, self.n_qubits, "CircuitLayer")
            lead = tuple(x.shape[:-1])
            state = x.reshape(-1, x.shape[-1])
            cols = state.new_zeros((state.shape[0], 0), dtype=real)
            out = self._execute(self._tpl(), cols, self.weights, state, want_state=True)
            return out.reshape(*lead, out.shape[-1])
        if x.dim() < 1 or x.shape[-1] != p:
            raise LayerInputError(
                f"CircuitLayer expects inputs of shape [batch, {p}] (columns "
                f"{list(self.input_symbols)}), got {list(x.shape)}."
            )
        lead = tuple(x.shape[:-1])
        flat = x.reshape(math.prod(lead), p).to(real)
        if flat.shape[0] == 0:
            return self.weights.new_zeros((*lead, self.n_observables))
        out = self._execute(self._tpl(), flat, self.weights)
        return out.reshape(*lead, self.n_observables)


class ExpectationValue(nn.Module):
    """Quantum states ``[*, 2**n]`` to expectations ``[*, n_observables]``.

    Args:
        observables: ``None`` (``Z`` on every qubit) or a list of Q-Store, Cirq or Qiskit
            observables (``[cirq.Z] * 6`` means ``Z`` on qubit ``i`` for entry ``i``).
        n_qubits: optional; when given, inputs must be ``n_qubits``-qubit states. Otherwise the
            qubit count is read from each input.

    >>> import torch
    >>> state = torch.tensor([[0.0, 1.0, 0.0, 0.0]], dtype=torch.complex64)  # |01>
    >>> ExpectationValue()(state)
    tensor([[ 1., -1.]])
    """

    def __init__(self, observables: Any = None, n_qubits: int | None = None) -> None:
        super().__init__()
        self.n_qubits = None if n_qubits is None else check_n_qubits(n_qubits)
        self.observables_spec = observables
        self._programs: dict[int, Program] = {}
        if self.n_qubits is not None:
            self._program(self.n_qubits)  # validate the observables now

    def extra_repr(self) -> str:
        obs = "Z per qubit" if self.observables_spec is None else repr(self.observables_spec)
        return f"observables={obs}" + (
            "" if self.n_qubits is None else f", n_qubits={self.n_qubits}"
        )

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_programs"] = {}
        return state

    def observables(self, n_qubits: int) -> list[PauliSum]:
        """The observables on ``n_qubits`` qubits."""
        try:
            return as_observables(self.observables_spec, n_qubits)
        except QStoreError as exc:
            raise LayerConfigError(f"Invalid observables for {n_qubits} qubits: {exc}") from exc

    @torch.compiler.disable  # type: ignore[untyped-decorator]
    def _add_program(self, n: int) -> Program:
        prog = _compile(UnifiedCircuit(n), (), (), self.observables(n))
        self._programs[n] = prog
        return prog

    def _program(self, n: int) -> Program:
        prog = self._programs.get(n)
        return prog if prog is not None else self._add_program(n)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        if not state.is_complex():
            raise LayerInputError(
                f"ExpectationValue takes quantum states (complex [batch, 2**n]), got dtype "
                f"{state.dtype}. Classical features go to QuantumLayer, which returns "
                "expectations itself."
            )
        n = _state_width(state, self.n_qubits, "ExpectationValue")
        prog = self._program(n)
        lead = tuple(state.shape[:-1])
        flat = state.reshape(-1, state.shape[-1])
        real = torch.float64 if state.dtype == torch.complex128 else torch.float32
        if flat.shape[0] == 0:
            return flat.new_zeros((*lead, prog.observables.n_obs), dtype=real)  # type: ignore[union-attr]
        out = engine.measure(prog, flat)
        return out.reshape(*lead, out.shape[-1])
