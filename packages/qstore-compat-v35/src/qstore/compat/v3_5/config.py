"""``TrainingConfig``: the v3.5 training settings, validated once.

The v3.5 settings that mean something on Q-Store 4 keep their names, defaults and effect;
``seed`` is new. Every other keyword a v3.5 program passes (``pinecone_environment``,
``enable_circuit_cache``, ``max_concurrent_circuits``, ``lr_scheduler`` ...) is accepted, kept
in :attr:`TrainingConfig.ignored_flags` and reported once (one ``UserWarning`` naming it), so an
old script runs and says what no longer applies.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from qstore.compat.v3_5._deprecation import not_yet_reported, warn_once
from qstore.core.errors import QStoreError

SDKS = ("mock", "cirq", "qiskit", "ionq")
"""v3.5 ``quantum_sdk`` values. ``'mock'`` is the exact local simulator now; the others run on
IonQ through qstore-ionq (``quantum_target`` ``'simulator'`` or a QPU such as ``'qpu.aria-1'``)."""

OPTIMIZERS = ("adam", "sgd", "natural_gradient")
"""v3.5 optimizers; ``'natural_gradient'`` is not carried over and runs plain gradient descent."""

GRADIENT_METHODS = ("spsa_subsampled", "parameter_shift", "finite_diff", "spsa")
"""v3.5 gradient methods (see :mod:`qstore.compat.v3_5.gradients`)."""

ENTANGLEMENTS = ("linear", "circular", "full")

MOCK_KEYS = ("", "mock-key")
"""Pinecone keys v3.5 treated as "no Pinecone"."""


class CompatConfigError(QStoreError, ValueError):
    """A v3.5 setting has a value that Q-Store 4 cannot run; the message names the fix."""


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise CompatConfigError(f"TrainingConfig.{name} must be a positive int, got {value!r}.")
    return int(value)


def _positive_float(name: str, value: object, *, zero_ok: bool = False) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    x = float(value) if ok else math.nan  # type: ignore[arg-type]
    if not ok or not math.isfinite(x) or x < 0 or (x == 0 and not zero_ok):
        need = "a non-negative" if zero_ok else "a positive"
        raise CompatConfigError(f"TrainingConfig.{name} must be {need} number, got {value!r}.")
    return x


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    key = value.lower() if isinstance(value, str) else value
    if key not in allowed:
        raise CompatConfigError(
            f"TrainingConfig.{name} must be one of {list(allowed)}, got {value!r}."
        )
    return str(key)


class TrainingConfig:
    """The v3.5 ``TrainingConfig``; see the module docstring for what still applies.

    Args:
        pinecone_api_key: required, as in v3.5. Q-Store 4 keeps quantum states in its state
            stores (``qstore.core.stores``, ``qstore.pinecone``); the trainer no longer writes
            training vectors to Pinecone, and says so once when a real key is given.
        quantum_sdk: ``'mock'`` (now the *exact* local simulator; v3.5's mock returned random
            bits), or ``'cirq'``, ``'qiskit'``, ``'ionq'``: IonQ through qstore-ionq.
        quantum_api_key: the IonQ API key for those (default ``$IONQ_API_KEY``).
        quantum_target: ``'simulator'`` or an IonQ QPU (``'qpu.aria-1'`` ...).
        learning_rate, optimizer, momentum, weight_decay: the update rule (``'adam'``, ``'sgd'``
            with momentum; ``weight_decay`` adds ``weight_decay * θ`` to the gradient).
        batch_size, epochs: ``epochs`` is used when ``train(epochs=None)``; the batches come
            from your loader.
        n_qubits, circuit_depth, entanglement: describe the model (kept for v3.5 code that
            reads them back; the model's own arguments decide its circuit).
        gradient_method: ``'spsa_subsampled'`` (v3.5's default here), ``'parameter_shift'``,
            ``'finite_diff'`` or ``'spsa'``.
        shots_per_circuit: shots per circuit evaluation in training and validation; ``None``
            gives exact expectations (new in the compatibility layer).
        use_gradient_clipping, gradient_clip_value: clip the gradient's norm.
        checkpoint_interval, checkpoint_directory: a JSON checkpoint every ``checkpoint_interval``
            epochs, in v3.5's format.
        log_interval: log every ``log_interval`` batches.
        spsa_c_initial: SPSA perturbation size at the first step (decays as ``k**-0.101``).
        gradient_subsample_size: samples of a batch that ``'spsa_subsampled'`` uses per step.
        seed: seeds parameter initialisation, SPSA perturbations, subsampling and shots.
        **flags: any other v3.5 setting: accepted, reported once, ignored.

    >>> cfg = TrainingConfig(pinecone_api_key="mock-key", learning_rate=0.05)
    >>> cfg.gradient_method, cfg.learning_rate
    ('spsa_subsampled', 0.05)
    """

    def __init__(
        self,
        pinecone_api_key: str,
        quantum_sdk: str = "mock",
        quantum_api_key: str | None = None,
        quantum_target: str = "simulator",
        learning_rate: float = 0.01,
        batch_size: int = 32,
        epochs: int = 100,
        optimizer: str = "adam",
        n_qubits: int = 10,
        circuit_depth: int = 4,
        entanglement: str = "linear",
        gradient_method: str = "spsa_subsampled",
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        shots_per_circuit: int | None = 1000,
        use_gradient_clipping: bool = True,
        gradient_clip_value: float = 1.0,
        checkpoint_interval: int = 10,
        checkpoint_directory: str = "./checkpoints",
        log_interval: int = 10,
        spsa_c_initial: float = 0.1,
        gradient_subsample_size: int = 5,
        seed: int | None = None,
        **flags: Any,
    ) -> None:
        if not isinstance(pinecone_api_key, str):
            raise CompatConfigError(
                "TrainingConfig.pinecone_api_key must be a string (v3.5 required it; "
                f"'mock-key' means no Pinecone), got {pinecone_api_key!r}."
            )
        self.pinecone_api_key = pinecone_api_key
        self.quantum_sdk = _choice("quantum_sdk", quantum_sdk, SDKS)
        self.quantum_api_key = quantum_api_key
        if not isinstance(quantum_target, str) or not quantum_target:
            raise CompatConfigError(
                "TrainingConfig.quantum_target must be 'simulator' or an IonQ QPU name such as "
                f"'qpu.aria-1', got {quantum_target!r}."
            )
        self.quantum_target = quantum_target
        self.learning_rate = _positive_float("learning_rate", learning_rate)
        self.batch_size = _positive_int("batch_size", batch_size)
        self.epochs = _positive_int("epochs", epochs)
        self.optimizer = _choice("optimizer", optimizer, OPTIMIZERS)
        self.n_qubits = _positive_int("n_qubits", n_qubits)
        self.circuit_depth = _positive_int("circuit_depth", circuit_depth)
        self.entanglement = _choice("entanglement", entanglement, ENTANGLEMENTS)
        self.gradient_method = _choice("gradient_method", gradient_method, GRADIENT_METHODS)
        self.momentum = _positive_float("momentum", momentum, zero_ok=True)
        self.weight_decay = _positive_float("weight_decay", weight_decay, zero_ok=True)
        self.shots_per_circuit = (
            None
            if shots_per_circuit is None
            else _positive_int("shots_per_circuit", shots_per_circuit)
        )
        self.use_gradient_clipping = bool(use_gradient_clipping)
        self.gradient_clip_value = _positive_float("gradient_clip_value", gradient_clip_value)
        self.checkpoint_interval = _positive_int("checkpoint_interval", checkpoint_interval)
        self.checkpoint_directory = str(checkpoint_directory)
        self.log_interval = _positive_int("log_interval", log_interval)
        self.spsa_c_initial = _positive_float("spsa_c_initial", spsa_c_initial)
        self.gradient_subsample_size = _positive_int(
            "gradient_subsample_size", gradient_subsample_size
        )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise CompatConfigError(f"TrainingConfig.seed must be an int or None, got {seed!r}.")
        self.seed = None if seed is None else int(seed)
        self.ignored_flags: dict[str, Any] = dict(flags)
        fresh = not_yet_reported(f"flag:{k}" for k in flags)
        if fresh:
            names = ", ".join(k.removeprefix("flag:") for k in fresh)
            warn_once(
                "flags:" + names,
                f"TrainingConfig: the v3.5 setting(s) {names} have no effect on Q-Store 4 and "
                "are ignored (see docs/migration-v3.5.md).",
                UserWarning,
            )
        if self.optimizer == "natural_gradient":
            warn_once(
                "optimizer:natural_gradient",
                "TrainingConfig(optimizer='natural_gradient'): the v3.5 natural-gradient "
                "optimizer is not carried over; training uses plain gradient descent with "
                "learning_rate. Use 'adam' or 'sgd'.",
                UserWarning,
            )

    @property
    def uses_pinecone(self) -> bool:
        """Whether v3.5 would have connected to Pinecone (a key other than ``'mock-key'``)."""
        return self.pinecone_api_key not in MOCK_KEYS

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain data (the API keys masked), e.g. for checkpoints and logs."""
        out = {k: v for k, v in vars(self).items() if k != "ignored_flags"}
        for key in ("pinecone_api_key", "quantum_api_key"):
            if out.get(key) and out[key] not in MOCK_KEYS:
                out[key] = "***"
        return out

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"TrainingConfig({body})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TrainingConfig):
            return NotImplemented
        return vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]  # mutable, as in v3.5
