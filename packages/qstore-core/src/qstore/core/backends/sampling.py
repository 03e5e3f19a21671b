"""Shots from probabilities: what every state-vector backend does the same way.

:class:`ProbabilitySampling` gives a backend that can compute basis-state ``probabilities``
its ``sample``, ``counts`` and ``execute`` (seeded, vectorised over the batch); the functions
are the pieces, for backends that need them separately.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from qstore.core.backends.base import ExecutionResult, FloatArray
from qstore.core.circuit import UnifiedCircuit
from qstore.core.errors import BackendError, BindingError
from qstore.core.validation import check_shots

__all__ = [
    "ProbabilitySampling",
    "check_shots",
    "counts_from_indices",
    "sample_indices",
    "z_expectations",
]


def z_expectations(probs: FloatArray, n: int) -> FloatArray:
    """``<Z_q>`` for every qubit from basis-state probabilities ``[..., 2**n]``."""
    from qstore.core.engine.program import bit_table

    return np.asarray(probs @ (1 - 2 * bit_table(n).astype(np.float64)), dtype=np.float64)


def sample_indices(
    probs: FloatArray, shots: int, rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """``shots`` basis indices per row of ``probs [B, 2**n]``, with one search for the batch."""
    bsz, dim = probs.shape
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    u = rng.random((bsz, shots))
    offs = np.arange(bsz)[:, None]
    flat = np.searchsorted((cdf + offs).ravel(), (u + offs).ravel(), side="right")
    idx = flat.reshape(bsz, shots) - offs * dim
    out: npt.NDArray[np.int64] = np.minimum(idx, dim - 1).astype(np.int64)
    return out


def counts_from_indices(idx: npt.NDArray[np.int64], n: int) -> dict[str, int]:
    """Counts per bitstring (qubit 0 first) of the sampled basis indices ``idx``."""
    uniq, cnt = np.unique(idx, return_counts=True)
    return {format(int(u), f"0{n}b"): int(c) for u, c in zip(uniq, cnt, strict=True)}


class ProbabilitySampling:
    """``sample``, ``counts`` and ``execute`` for a backend with ``probabilities``.

    The backend sets ``name`` and ``_rng`` (the generator used when no seed is given).
    """

    name: str
    _rng: np.random.Generator
    # execute(shots=None) leaves out basis states whose probability is at most this
    _probability_cutoff: ClassVar[float] = 1e-15

    def probabilities(
        self,
        circuit: UnifiedCircuit,
        values: npt.ArrayLike | None = None,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
    ) -> FloatArray:
        """Basis-state probabilities ``[batch, 2**n]``."""
        raise NotImplementedError

    def _engine(self) -> str:
        """What runs the circuits, as error messages name it."""
        return self.name

    def _generator(self, seed: int | None) -> np.random.Generator:
        return self._rng if seed is None else np.random.default_rng(seed)

    def sample(
        self,
        circuit: UnifiedCircuit,
        shots: int,
        values: npt.ArrayLike | None = None,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
        seed: int | None = None,
    ) -> npt.NDArray[np.int64]:
        """Measured basis indices ``[batch, shots]`` (qubit 0 most significant), seeded."""
        check_shots(shots)
        probs = self.probabilities(circuit, values, names=names, shared=shared)
        return sample_indices(probs, shots, self._generator(seed))

    def counts(
        self,
        circuit: UnifiedCircuit,
        shots: int,
        values: npt.ArrayLike | None = None,
        *,
        names: Sequence[str] | None = None,
        shared: Mapping[str, float] | None = None,
        seed: int | None = None,
    ) -> list[dict[str, int]]:
        """Counts per bitstring (qubit 0 first) for every row of the batch."""
        idx = self.sample(circuit, shots, values, names=names, shared=shared, seed=seed)
        return [counts_from_indices(row, circuit.n_qubits) for row in idx]

    async def execute(
        self, circuit: UnifiedCircuit, shots: int | None = 1000, timeout: float | None = None
    ) -> ExecutionResult:
        """Run one bound circuit: counts with ``shots``, exact probabilities with ``None``."""
        if circuit.is_parameterized:
            raise BindingError(
                f"execute() needs a bound circuit; symbols {circuit.parameter_names} are unbound. "
                "Use circuit.bind({...}) first."
            )
        if shots is not None:
            check_shots(shots)

        def work() -> ExecutionResult:
            n = circuit.n_qubits
            probs = self.probabilities(circuit)[0]
            z = z_expectations(probs, n)
            if shots is None:
                nz = np.flatnonzero(probs > self._probability_cutoff)
                pmap = {format(int(i), f"0{n}b"): float(probs[i]) for i in nz}
                return ExecutionResult(self.name, n, None, probabilities=pmap, exact_expectations=z)
            idx = sample_indices(probs[None], shots, self._generator(None))[0]
            counts = counts_from_indices(idx, n)
            return ExecutionResult(self.name, n, shots, counts=counts, exact_expectations=z)

        try:
            return await asyncio.wait_for(asyncio.to_thread(work), timeout)
        except (TimeoutError, asyncio.TimeoutError) as exc:  # distinct classes on Python 3.10
            raise BackendError(
                f"{self._engine()} execution exceeded the timeout of {timeout} s."
            ) from exc
