"""Keras 3 quantum layers: ``QuantumLayer``, ``AmplitudeEncoding``, ``ExpectationValue``.

The rule (SPEC §4.1): **a quantum state in gives a quantum state out; classical features in give
expectations out** (``<Z_i>`` per qubit by default). States travel between layers as complex
tensors ``[batch, 2**n_qubits]`` (complex64, or complex128 under a float64 dtype policy; qubit 0
is the most significant bit of the index).

>>> import cirq, keras
>>> from qstore.tf import layers
>>> inputs = keras.Input((64,))
>>> h = keras.layers.Dense(32, activation="relu")(inputs)
>>> state = layers.AmplitudeEncoding(n_qubits=6)(h)
>>> state = layers.QuantumLayer(n_qubits=6, depth=4)(state)
>>> z = layers.ExpectationValue(observables=[cirq.Z] * 6)(state)
>>> keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(z)).output_shape
(None, 10)

Classical features of any width are angle-encoded as documented in :mod:`qstore.core.templates`
(feature ``j`` on qubit ``j % n_qubits``, chunks of ``n_qubits`` features re-uploaded between the
trainable layers), so ``Input(64) -> QuantumLayer(n_qubits=8, depth=4)`` works.

Precision: the simulation runs in complex64 (float32 weights), or complex128 when the layer's
dtype policy computes in float64. Under a mixed precision policy (``mixed_float16``,
``mixed_bfloat16``) the quantum layers keep simulating in float32 — half precision is far too
coarse for amplitudes — and cast their expectation outputs to the policy's compute dtype.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import tensorflow as tf

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
from qstore.core.errors import LayerConfigError, LayerInputError, QStoreError
from qstore.core.observables import PauliString, PauliSum, as_observable, as_observables
from qstore.core.templates import LayerSpec, check_amplitude_width, check_n_qubits
from qstore.tf import engine
from qstore.tf.gradients import backend_expectation, backend_unitary

logger = logging.getLogger(__name__)

Tensor = Any

NATIVE_BACKENDS = ("tf", "tensorflow")
"""Names of the native TensorFlow engine (the default)."""

_TWO_PI = 2.0 * math.pi


# -- observables in configs ------------------------------------------------------------------------
def normalise_observables(spec: Any) -> list[PauliSum] | None:
    """Observables in Q-Store form, without knowing the qubit count yet (``None`` stays).

    Accepts what :func:`qstore.core.observables.as_observables` accepts: a list such as
    ``[cirq.Z] * 6`` (``Z`` on qubit ``i`` for entry ``i``), Pauli strings/sums, Cirq and Qiskit
    forms, label strings, and the serialised form written by :func:`observables_config`.
    """
    if spec is None:
        return None
    if isinstance(spec, Sequence) and spec and _is_config(spec[0]):
        return [_from_config(o) for o in spec]
    if _is_config(spec):
        return [_from_config(spec)]
    return as_observables(spec, 1 << 30)


def _is_config(obj: Any) -> bool:
    return isinstance(obj, Mapping) and "terms" in obj


def observables_config(obs: Sequence[PauliSum] | None) -> list[dict[str, Any]] | None:
    """JSON form: ``[{"terms": [[coeff, [[qubit, "Z"], ...]], ...]}, ...]``."""
    if obs is None:
        return None
    return [
        {"terms": [[float(t.coeff.real), [[q, p] for q, p in t.paulis]] for t in o.terms]}
        for o in obs
    ]


def _from_config(data: Mapping[str, Any]) -> PauliSum:
    terms = tuple(
        PauliString.from_dict({int(q): str(p) for q, p in paulis}, float(coeff))
        for coeff, paulis in data["terms"]
    )
    return as_observable(PauliSum(terms))


def _check_observables(obs: list[PauliSum] | None, n_qubits: int, layer: str) -> list[PauliSum]:
    if obs is None:
        return as_observables(None, n_qubits)
    for o in obs:
        if o.max_qubit >= n_qubits:
            raise LayerConfigError(
                f"{layer}: observable {o} acts on qubit {o.max_qubit}, but the state has only "
                f"{n_qubits} qubits (0 .. {n_qubits - 1}); give observables for {n_qubits} qubits "
                "or change n_qubits."
            )
    return obs


# -- precision -------------------------------------------------------------------------------------
def _sim_dtype(layer: keras.layers.Layer) -> tf.DType:
    """float64 when the policy computes in float64, else float32 (also for mixed policies)."""
    return tf.float64 if layer.compute_dtype == "float64" else tf.float32


def _complex(real: tf.DType) -> tf.DType:
    return tf.complex128 if real == tf.float64 else tf.complex64


def _feature_width(input_shape: Any, layer: str) -> int:
    shape = tuple(input_shape)
    if len(shape) != 2 or shape[-1] is None:
        raise LayerInputError(
            f"{layer} expects inputs of shape [batch, features] with a known feature count, got "
            f"{list(shape)}; flatten or reshape them first."
        )
    return int(shape[-1])


def _is_state(x: Tensor) -> bool:
    return bool(tf.as_dtype(x.dtype).is_complex)


# -- QuantumLayer ----------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="qstore")
class QuantumLayer(keras.layers.Layer):
    """A trainable quantum circuit: ``depth`` layers of ``RY``/``RZ`` rotations and CNOTs.

    * Classical features ``[batch, F]`` in (any ``F``): the features are angle-encoded (see
      :mod:`qstore.core.templates`), and the layer returns expectations ``[batch, n_obs]``
      (``<Z_i>`` per qubit unless ``observables`` says otherwise).
    * A quantum state ``[batch, 2**n_qubits]`` (complex, e.g. from :class:`AmplitudeEncoding`) in:
      the layer applies its circuit to the state and returns the new state.

    Args:
        n_qubits: number of qubits.
        depth: number of trainable layers; weights have shape ``[depth, n_qubits, 2]``.
        backend: ``'tf'`` (default): Q-Store's engine on TensorFlow ops (autodiff, GPUs,
            ``tf.function``, distribution strategies). ``'qsim'``: TensorFlow Quantum's qsim ops
            when ``tensorflow-quantum`` is installed, otherwise the ``qsim`` backend of
            qstore-sim-qsim. Any other name (or backend object) from ``qstore.core.backends``
            runs through :mod:`qstore.core.adapter` (the adapter ``qstore.torch`` shares) in
            ``tf.custom_gradient``. Quantum-state inputs (and ``encoding='amplitude'``) on such
            a backend evolve by the circuit's unitary, computed on the backend and
            differentiated by the exact rotation shift rule.
        entanglement: ``'linear'``, ``'circular'`` or ``'full'`` CNOT pattern.
        encoding: how classical features enter (:mod:`qstore.core.templates`, the same
            circuits as the PyTorch ``QuantumLayer``): ``'angle'`` (feature ``j`` rotates qubit
            ``j % n_qubits``, chunks spread over the trainable layers), ``'reupload'`` (all
            features before every trainable layer, scaled by the trainable ``input_scaling
            [depth, n_qubits]``, initialised to 1) or ``'amplitude'`` (features as amplitudes,
            ``F <= 2**n_qubits``, zero-padded and normalised; an all-zero row becomes
            ``|0...0>`` with zero gradient).
        observables: measured observables for classical inputs (default ``Z`` per qubit);
            ``[cirq.Z] * n``, Q-Store Pauli sums, Cirq or Qiskit forms.
        weights_initializer: Keras initializer of the rotation angles (default uniform in
            ``[0, 2*pi)``).
        gradient_method: for backends other than ``'tf'``: ``'auto'`` (the backend's adjoint
            VJP if it has one and ``shots`` is None, else parameter shift), ``'adjoint'``,
            ``'parameter_shift'``, ``'finite_diff'`` or ``'spsa'``
            (:func:`qstore.core.adapter.resolve_gradient`).
        shots: for sampling backends: shots per expectation (``None``: exact), in the forward
            pass and the gradient.
        backend_options: options for creating a backend given by name (e.g. ``{"seed": 7}``).

    Invalid options raise :class:`~qstore.core.errors.LayerConfigError` at construction.

    >>> import keras
    >>> m = keras.Sequential([keras.Input((64,)), QuantumLayer(8, depth=4), keras.layers.Dense(10)])
    >>> tuple(m.layers[0].weights[0].shape)
    (4, 8, 2)
    """

    def __init__(
        self,
        n_qubits: int,
        depth: int = 2,
        backend: Any = "tf",
        entanglement: str = "linear",
        encoding: str = "angle",
        observables: Any = None,
        weights_initializer: Any = None,
        gradient_method: str = "auto",
        shots: int | None = None,
        backend_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(autocast=False, **kwargs)
        # The simulation runs as one custom gradient, on NumPy through tf.numpy_function on the
        # CPU (and external backends always do): XLA cannot compile that, so Keras must not try.
        self.supports_jit = False
        # Validate everything now: a bad configuration fails where the model is written.
        self.spec = LayerSpec.create(n_qubits, depth, entanglement, encoding)
        self.n_qubits = self.spec.n_qubits
        self.depth = self.spec.depth
        self.entanglement = self.spec.entanglement
        self.encoding = self.spec.encoding
        try:
            self.observables = normalise_observables(observables)
        except QStoreError as exc:
            raise LayerConfigError(f"Invalid observables: {exc}") from exc
        if self.observables is not None:
            _check_observables(self.observables, self.n_qubits, self._describe())
        self.gradient_method = gradient_method
        self.shots = check_shots(shots)
        self.backend_options = dict(backend_options or {})
        if gradient_method not in GRADIENT_METHODS:
            raise LayerConfigError(
                f"gradient_method must be one of {list(GRADIENT_METHODS)}, got {gradient_method!r}."
            )
        self.backend_name = _backend_name(backend)
        self._backend_object = None if isinstance(backend, str) else backend
        self._executor: Any = _executor_for(self)
        self.weights_initializer = keras.initializers.get(
            weights_initializer
            if weights_initializer is not None
            else keras.initializers.RandomUniform(0.0, _TWO_PI)
        )
        self._circuits: dict[int, tuple[UnifiedCircuit, list[str], list[str]]] = {}

    def _describe(self) -> str:
        return f"QuantumLayer(n_qubits={self.n_qubits}, depth={self.depth})"

    # -- building ------------------------------------------------------------------------------
    def build(self, input_shape: Any) -> None:
        width = _feature_width(input_shape, self._describe())
        if self.encoding == "amplitude":
            check_amplitude_width(width, self.n_qubits)
        self.kernel = self.add_weight(
            name="weights",
            shape=self.spec.weight_shape,
            initializer=self.weights_initializer,
            trainable=True,
        )
        self.input_scaling = None
        if self.spec.scaling_shape is not None:
            self.input_scaling = self.add_weight(
                name="input_scaling",
                shape=self.spec.scaling_shape,
                initializer="ones",
                trainable=True,
            )

    def circuit(self, n_features: int = 0) -> tuple[UnifiedCircuit, list[str], list[str]]:
        """``(circuit, input names, weight names)`` for ``n_features`` features (0: a state,
        or amplitude encoding: the trainable part only)."""
        hit = self._circuits.get(n_features)
        if hit is None:
            hit = self.spec.circuit(n_features or None)
            self._circuits[n_features] = hit
        return hit

    def _columns(self, x: Tensor) -> Tensor:
        """Binding columns ``[B, P]`` from features ``[B, F]`` (re-upload: scaled copies)."""
        if self.input_scaling is None:
            return x
        f = int(x.shape[-1])
        scale = tf.gather(tf.cast(self.input_scaling, x.dtype), self.spec.scaling_qubits(f), axis=1)
        return tf.reshape(x[:, None, :] * scale[None], [-1, self.depth * f])

    # -- running -------------------------------------------------------------------------------
    def call(self, inputs: Tensor) -> Tensor:
        real = _sim_dtype(self)
        weights = tf.cast(self.kernel, real)
        if _is_state(inputs):
            self._check_state_width(inputs.shape[-1])
            state = tf.cast(inputs, _complex(real))
            return self._executor.evolve(self, state, weights)
        x = tf.cast(inputs, real)
        if self.encoding == "amplitude":
            state = amplitude_encode(x, self.n_qubits)
            out = _measure(self, self._executor.evolve(self, state, weights))
        else:
            out = self._executor.expectation(self, self._columns(x), weights, int(x.shape[-1]))
        return tf.cast(out, self.compute_dtype)

    def _check_state_width(self, width: int | None) -> None:
        if width != 1 << self.n_qubits:
            raise LayerInputError(
                f"{self._describe()} got a quantum state of width {width}, but "
                f"{self.n_qubits} qubits need 2**{self.n_qubits} = {1 << self.n_qubits} "
                f"amplitudes; make n_qubits match the encoding (a width of {width} is "
                f"{_n_qubits_of(width or 0)} qubits)."
            )

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        n_obs = len(self.observables) if self.observables is not None else self.n_qubits
        return (input_shape[0], n_obs)

    def compute_output_spec(self, inputs: Any) -> Any:
        if _is_state(inputs):
            self._check_state_width(inputs.shape[-1])
            return keras.KerasTensor(inputs.shape, dtype=inputs.dtype)
        return super().compute_output_spec(inputs)

    # -- serialisation -------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "n_qubits": self.n_qubits,
                "depth": self.depth,
                "backend": self.backend_name,
                "entanglement": self.entanglement,
                "encoding": self.encoding,
                "observables": observables_config(self.observables),
                "weights_initializer": keras.initializers.serialize(self.weights_initializer),
                "gradient_method": self.gradient_method,
                "shots": self.shots,
                "backend_options": dict(self.backend_options),
            }
        )
        return config


def _n_qubits_of(width: int) -> str:
    n = int(width).bit_length() - 1
    return str(n) if 1 << n == width else "not a whole number of"


def _backend_name(backend: Any) -> str:
    if isinstance(backend, str):
        if not backend:
            raise LayerConfigError("backend must be a non-empty name such as 'tf' or 'qsim'.")
        return backend.lower() if backend.lower() in NATIVE_BACKENDS else backend
    name = getattr(backend, "name", None)
    if not isinstance(name, str):
        raise LayerConfigError(
            f"backend must be a name ('tf', 'qsim', any of qstore.core.backends.available()) "
            f"or a Q-Store backend object, got {backend!r}."
        )
    return name


# -- executors: how a QuantumLayer runs on a backend -----------------------------------------------
class _Native:
    """Q-Store's engine on TensorFlow ops; TensorFlow differentiates it."""

    name = "tf"

    def expectation(self, layer: QuantumLayer, x: Tensor, w: Tensor, n_features: int) -> Tensor:
        circuit, names, wnames = layer.circuit(n_features)
        prog = engine.program(circuit, names, wnames, _obs(layer))
        return engine.expectation(prog, tf.cast(x, w.dtype), weights=w)

    def evolve(self, layer: QuantumLayer, state: Tensor, w: Tensor) -> Tensor:
        circuit, _, wnames = layer.circuit(0)
        prog = engine.program(circuit, (), wnames, None)
        no_inputs = tf.zeros(tf.stack([tf.shape(state)[0], 0]), dtype=w.dtype)
        return engine.evolve(prog, no_inputs, state, weights=w)


class _Backend:
    """Any other Q-Store backend, through the core adapter (:mod:`qstore.core.adapter`)."""

    def __init__(self, backend: Any, layer: QuantumLayer) -> None:
        self.backend = backend
        self.name = str(getattr(backend, "name", backend))
        self.gradient_method = layer.gradient_method
        self.shots = layer.shots
        self._adapters: dict[int, ExpectationAdapter] = {}
        self._unitary: UnitaryAdapter | None = None
        resolve_gradient(backend, layer.gradient_method, layer.shots)  # refuse bad options now
        if layer.encoding == "amplitude":
            check_state_options(layer.gradient_method, layer.shots)

    def expectation(self, layer: QuantumLayer, x: Tensor, w: Tensor, n_features: int) -> Tensor:
        adapter = self._adapters.get(n_features)
        if adapter is None:
            circuit, names, wnames = layer.circuit(n_features)
            adapter = ExpectationAdapter(
                circuit,
                self.backend,
                names,
                wnames,
                _obs(layer),
                gradient_method=self.gradient_method,
                shots=self.shots,
            )
            self._adapters[n_features] = adapter
        return backend_expectation(adapter, x, w)

    def evolve(self, layer: QuantumLayer, state: Tensor, w: Tensor) -> Tensor:
        if self._unitary is None:
            try:
                check_state_options(self.gradient_method, self.shots)
            except LayerConfigError as exc:
                raise LayerInputError(str(exc)) from None
            circuit, _, wnames = layer.circuit(0)
            self._unitary = UnitaryAdapter.on_backend(circuit, self.backend, wnames)
        u = backend_unitary(self._unitary, w)
        return tf.linalg.matmul(state, tf.cast(u, state.dtype), transpose_b=True)


class _TFQ:
    """TensorFlow Quantum's qsim ops (only where tensorflow-quantum is installed)."""

    name = "qsim (TensorFlow Quantum)"

    def __init__(self) -> None:
        self._cache: dict[Any, Any] = {}

    def expectation(self, layer: QuantumLayer, x: Tensor, w: Tensor, n_features: int) -> Tensor:
        from qstore.tf.tfq import TFQExpectation

        f = n_features
        key = ("exp", id(layer), f)
        if key not in self._cache:
            circuit, names, wnames = layer.circuit(f)
            self._cache[key] = TFQExpectation(circuit, names, wnames, _obs(layer))
        return tf.cast(self._cache[key](x, w, x), x.dtype)

    def evolve(self, layer: QuantumLayer, state: Tensor, w: Tensor) -> Tensor:
        from qstore.tf.tfq import TFQUnitary

        key = ("unitary", id(layer))
        if key not in self._cache:
            circuit, _, wnames = layer.circuit(0)
            self._cache[key] = TFQUnitary(circuit, wnames)
        u = self._cache[key](w)
        return tf.linalg.matmul(state, tf.cast(u, state.dtype), transpose_b=True)


def _obs(layer: QuantumLayer) -> list[PauliSum] | None:
    return layer.observables


def _measure(layer: QuantumLayer, state: Tensor) -> Tensor:
    """The layer's observables on a final state ``[B, 2**n]`` (exact, TensorFlow ops)."""
    prog = engine.program(UnifiedCircuit(layer.n_qubits), (), (), _obs(layer))
    return engine.measure(prog, state)


def _executor_for(layer: QuantumLayer) -> Any:
    """How ``layer`` runs; options that its backend cannot honour raise LayerConfigError."""
    name, backend_object = layer.backend_name, layer._backend_object
    if backend_object is not None:
        return _Backend(resolve_backend(backend_object, layer.backend_options), layer)
    native = name in NATIVE_BACKENDS
    if native or name == "qsim":
        tfq_ok = False
        if not native:
            from qstore.tf import tfq

            tfq_ok = tfq.available()
        if native or tfq_ok:
            exact = layer.gradient_method in ("auto", "adjoint")
            if layer.shots is not None or not exact or layer.backend_options:
                raise LayerConfigError(
                    f"backend={name!r} runs on TensorFlow ops, exact and differentiated by "
                    "TensorFlow; shots, gradient_method and backend_options apply to Q-Store "
                    "backends (e.g. backend='local')."
                )
            return _Native() if native else _TFQ()
    return _Backend(resolve_backend(name, layer.backend_options), layer)


# -- AmplitudeEncoding -----------------------------------------------------------------------------
def amplitude_encode(x: Tensor, n_qubits: int) -> Tensor:
    """States ``[B, 2**n_qubits]`` (complex) from real features ``[B, F]``, differentiable.

    The rule of :func:`qstore.core.templates.amplitude_state` (and of ``qstore.torch``):
    zero-pad to ``2**n_qubits``, divide by the Euclidean norm; an all-zero row becomes
    ``|0...0>`` with zero gradient.
    """
    dim = 1 << n_qubits
    check_amplitude_width(int(x.shape[-1]), n_qubits)
    pad = dim - int(x.shape[-1])
    if pad:
        x = tf.pad(x, [[0, 0], [0, pad]])
    norm = tf.norm(x, axis=-1, keepdims=True)
    ok = norm > 0
    # where() on both branches: keep the unused branch finite so that its gradient is too
    scaled = x / tf.where(ok, norm, tf.ones_like(norm))
    ground = tf.one_hot(0, dim, dtype=x.dtype)[None, :]
    out = tf.where(ok, scaled, ground)
    return tf.complex(out, tf.zeros_like(out))


@keras.saving.register_keras_serializable(package="qstore")
class AmplitudeEncoding(keras.layers.Layer):
    """Classical features ``[batch, F]`` (``F <= 2**n_qubits``) to a quantum state.

    The features are zero-padded to ``2**n_qubits`` amplitudes and normalised to unit length
    (feature ``j`` is the amplitude of basis state ``|j>``, qubit 0 the most significant bit).
    An all-zero row becomes ``|0...0>`` with zero gradient, as in ``qstore.torch``
    (:func:`qstore.core.templates.amplitude_state`).

    >>> import numpy as np
    >>> state = AmplitudeEncoding(1)(np.array([[3.0, 4.0], [0.0, 0.0]])).numpy()
    >>> state.real.astype(float).round(3).tolist()
    [[0.6, 0.8], [1.0, 0.0]]
    """

    def __init__(self, n_qubits: int, **kwargs: Any) -> None:
        super().__init__(autocast=False, **kwargs)
        self.n_qubits = check_n_qubits(n_qubits)

    def build(self, input_shape: Any) -> None:
        width = _feature_width(input_shape, f"AmplitudeEncoding(n_qubits={self.n_qubits})")
        check_amplitude_width(width, self.n_qubits)

    def call(self, inputs: Tensor) -> Tensor:
        return amplitude_encode(tf.cast(inputs, _sim_dtype(self)), self.n_qubits)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        return (input_shape[0], 1 << self.n_qubits)

    def compute_output_spec(self, inputs: Any) -> Any:
        real = _sim_dtype(self)
        return keras.KerasTensor((inputs.shape[0], 1 << self.n_qubits), dtype=_complex(real).name)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["n_qubits"] = self.n_qubits
        return config


# -- ExpectationValue ------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="qstore")
class ExpectationValue(keras.layers.Layer):
    """Expectations ``[batch, n_obs]`` of a quantum state ``[batch, 2**n]``.

    ``observables``: ``None`` (``Z`` on every qubit), ``[cirq.Z] * n`` (``Z`` on qubit ``i`` for
    entry ``i``), Q-Store Pauli sums (``qc.Z(0) * qc.Z(1)``), Cirq or Qiskit forms. The number of
    qubits is read from the state's width.
    """

    def __init__(self, observables: Any = None, **kwargs: Any) -> None:
        super().__init__(autocast=False, **kwargs)
        self.observables = normalise_observables(observables)
        self._prog: Any = None
        self._n_qubits = 0

    def build(self, input_shape: Any) -> None:
        width = _feature_width(input_shape, "ExpectationValue")
        n = int(width).bit_length() - 1
        if n < 1 or 1 << n != width:
            raise LayerInputError(
                f"ExpectationValue expects a quantum state of 2**n amplitudes, got width {width}."
            )
        self._n_qubits = n
        obs = _check_observables(self.observables, n, "ExpectationValue")
        self._prog = engine.program(UnifiedCircuit(n), (), (), obs)

    def call(self, inputs: Tensor) -> Tensor:
        self._check_state(inputs)
        return tf.cast(engine.measure(self._prog, inputs), self.compute_dtype)

    def compute_output_spec(self, inputs: Any) -> Any:
        self._check_state(inputs)
        return super().compute_output_spec(inputs)

    def _check_state(self, inputs: Any) -> None:
        if not _is_state(inputs):
            raise LayerInputError(
                "ExpectationValue measures a quantum state (a complex [batch, 2**n] tensor, as "
                "AmplitudeEncoding or a QuantumLayer fed a state return); got real inputs of "
                f"dtype {inputs.dtype}. QuantumLayer already returns expectations for "
                "classical inputs."
            )

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        n_obs = len(self.observables) if self.observables is not None else self._n_qubits
        return (input_shape[0], n_obs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["observables"] = observables_config(self.observables)
        return config
