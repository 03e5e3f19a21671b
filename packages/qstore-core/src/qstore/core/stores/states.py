"""Input checks shared by every store, the real-vector encoding, and exact fidelity ranking.

Stores that can only rank by a real similarity keep each state with its global phase fixed
canonically (the first largest-magnitude amplitude made real and positive) as ``[Re, Im]``,
a unit vector of ``2 * 2**n`` floats; fidelity is invariant under global phase, so nothing is
lost. Final rankings always come from :func:`top_k`: fidelity descending, ties by id.

>>> import numpy as np
>>> from qstore.core.stores import states
>>> psi = np.array([[0, 1j]]) * np.exp(0.3j)
>>> np.allclose(states.to_real(psi), [[0.0, 1.0, 0.0, 0.0]])
True
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from qstore.core.stores.base import ComplexArray, StoreInputError

__all__ = [
    "MAX_ID_LENGTH",
    "MAX_NAMESPACE_LENGTH",
    "MAX_TOP_K",
    "NORM_TOLERANCE",
    "as_states",
    "canonical_phase",
    "check_ids",
    "check_namespace",
    "check_top_k",
    "fidelities",
    "from_real",
    "one_state",
    "to_real",
    "top_k",
]

MAX_ID_LENGTH = 512
"""Longest id (ASCII characters), Pinecone's limit, so an id valid in one store is in all."""
MAX_NAMESPACE_LENGTH = 512
"""Longest namespace name (ASCII characters)."""
MAX_TOP_K = 10_000
"""Largest ``top_k`` of a query."""
NORM_TOLERANCE = 1e-6
"""How far ``||psi||`` may be from 1."""


def check_ids(ids: Sequence[str], *, unique: bool = True) -> list[str]:
    """Check ids: a sequence of 1-512 ASCII characters each, without NUL, no repeats.

    >>> check_ids(["a", "b"])
    ['a', 'b']
    """
    if isinstance(ids, str | bytes) or not isinstance(ids, Sequence | np.ndarray):
        raise StoreInputError(
            f"ids must be a list of strings, got {type(ids).__name__}"
            + (f" {ids!r}; wrap a single id in a list: [{ids!r}]." if isinstance(ids, str) else ".")
        )
    out = [str(i) if isinstance(i, np.str_) else i for i in ids]
    for pos, i in enumerate(out):
        if not isinstance(i, str):
            raise StoreInputError(f"ids[{pos}] must be a string, got {i!r} ({type(i).__name__}).")
        if not i or len(i) > MAX_ID_LENGTH:
            shown = i if len(i) <= 40 else i[:40] + "..."
            raise StoreInputError(
                f"ids[{pos}] {shown!r} has {len(i)} characters; ids have 1 to {MAX_ID_LENGTH} "
                "(keep long keys in metadata and use a hash of them as the id)."
            )
        if not i.isascii() or "\x00" in i:
            raise StoreInputError(
                f"ids[{pos}] {i!r} must be ASCII without NUL characters (Pinecone's rule, kept by "
                "every store); encode other text, e.g. with urllib.parse.quote."
            )
    if unique and len(set(out)) != len(out):
        seen: set[str] = set()
        dup = next(i for i in out if i in seen or seen.add(i))  # type: ignore[func-returns-value]
        raise StoreInputError(f"id {dup!r} appears twice in one batch; ids must be unique.")
    return out


def check_namespace(namespace: str | None, *, allow_none: bool = False) -> str:
    """Check a namespace name ("" is the default namespace)."""
    if namespace is None and allow_none:
        return ""
    if not isinstance(namespace, str):
        raise StoreInputError(
            f"namespace must be a string ('' for the default namespace), got {namespace!r}."
        )
    if len(namespace) > MAX_NAMESPACE_LENGTH or not namespace.isascii() or "\x00" in namespace:
        raise StoreInputError(
            f"namespace {namespace[:40]!r} must be at most {MAX_NAMESPACE_LENGTH} ASCII "
            "characters without NUL."
        )
    return namespace


def check_top_k(top_k: int) -> int:
    """Check ``top_k``: an integer from 1 to :data:`MAX_TOP_K`."""
    if isinstance(top_k, bool) or not isinstance(top_k, int | np.integer):
        raise StoreInputError(f"top_k must be an integer, got {top_k!r}.")
    if not 1 <= int(top_k) <= MAX_TOP_K:
        raise StoreInputError(f"top_k must be between 1 and {MAX_TOP_K}, got {top_k}.")
    return int(top_k)


def _simulate(circuit: Any, bindings: Any, backend: str) -> ComplexArray:
    from qstore.core.backends import registry

    sim = registry.get(backend)
    if not hasattr(sim, "state"):
        raise StoreInputError(
            f"Backend {backend!r} cannot return state vectors; use backend='local' to turn "
            "circuits into states."
        )
    if bindings is None and circuit.symbols:
        raise StoreInputError(
            f"The circuit has symbols {sorted(circuit.symbols)[:5]}; pass bindings=[[...], ...] "
            "with one row of values per state."
        )
    values = None if bindings is None else np.atleast_2d(np.asarray(bindings, dtype=np.float64))
    return np.asarray(sim.state(circuit, values), dtype=np.complex128)


def as_states(
    states: Any,
    *,
    bindings: Any = None,
    n_qubits: int | None = None,
    backend: str = "local",
    what: str = "states",
) -> ComplexArray:
    """Turn ``states`` (array ``[N, 2**n]`` or ``[2**n]``, or a circuit with ``bindings``) into
    checked complex128 rows: finite, normalised, of width ``2**n_qubits`` when given.

    >>> as_states([[1, 0]]).tolist()
    [[(1+0j), 0j]]
    """
    from qstore.core.circuit import UnifiedCircuit

    if isinstance(states, UnifiedCircuit):
        arr = _simulate(states, bindings, backend)
    else:
        if bindings is not None:
            raise StoreInputError(
                f"bindings= goes with a circuit; {what} is already an array of amplitudes."
            )
        try:
            arr = np.asarray(states, dtype=np.complex128)
        except (TypeError, ValueError) as exc:
            raise StoreInputError(
                f"{what} must be complex amplitudes [N, 2**n] or a UnifiedCircuit with "
                f"bindings, got {type(states).__name__}: {exc}"
            ) from None
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise StoreInputError(
            f"{what} must have shape [N, 2**n] with N >= 1, got shape {arr.shape}."
        )
    width = arr.shape[1]
    if width < 2 or width & (width - 1):
        raise StoreInputError(
            f"{what} have {width} amplitudes per row; a state of n qubits has 2**n (>= 2)."
        )
    if n_qubits is not None and width != 2**n_qubits:
        raise StoreInputError(
            f"{what} have {width} amplitudes ({width.bit_length() - 1} qubits) but this store "
            f"holds {n_qubits}-qubit states ({2**n_qubits} amplitudes); use another store "
            "(or database path / index) for states of a different width."
        )
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise StoreInputError(f"{what}[{row}] has NaN or infinite amplitudes.")
    norms = np.linalg.norm(arr, axis=1)
    bad = np.abs(norms - 1.0) > NORM_TOLERANCE
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise StoreInputError(
            f"{what}[{row}] has norm {norms[row]:.9g}, not 1 (within {NORM_TOLERANCE:g}); "
            "normalise first: psi / np.linalg.norm(psi, axis=-1, keepdims=True)."
        )
    return arr


def one_state(
    state: Any, *, bindings: Any = None, n_qubits: int | None = None, backend: str = "local"
) -> ComplexArray:
    """:func:`as_states` for the single query state of ``query()``: ``[1, 2**n]``, or
    :class:`StoreInputError` pointing to ``query_many()`` for a batch."""
    arr = as_states(state, bindings=bindings, n_qubits=n_qubits, backend=backend, what="state")
    if arr.shape[0] != 1:
        raise StoreInputError(
            f"query() takes one state, got {arr.shape[0]}; use query_many() for a batch."
        )
    return arr


def canonical_phase(states: npt.ArrayLike) -> ComplexArray:
    """``states`` with the first largest-magnitude amplitude of each row real and positive.

    >>> canonical_phase([[0.6j, -0.8j]]).real.round(12).tolist()  # the imaginary parts are 0
    [[-0.6, 0.8]]
    """
    arr = np.atleast_2d(np.asarray(states, dtype=np.complex128))
    mags = np.abs(arr)
    j = np.argmax(mags, axis=1)
    ref = arr[np.arange(arr.shape[0]), j]
    phase = np.conj(ref) / np.abs(ref)
    return arr * phase[:, None]  # type: ignore[no-any-return]


def to_real(states: npt.ArrayLike, dtype: npt.DTypeLike = np.float64) -> npt.NDArray[Any]:
    """The ``[Re, Im]`` encoding ``[N, 2 * 2**n]`` of ``states`` in canonical phase."""
    c = canonical_phase(states)
    return np.concatenate([c.real, c.imag], axis=1).astype(dtype, copy=False)


def from_real(vectors: npt.ArrayLike) -> ComplexArray:
    """Inverse of :func:`to_real` (complex128 ``[N, 2**n]``)."""
    v = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    half = v.shape[1] // 2
    return v[:, :half] + 1j * v[:, half:]


def fidelities(queries: npt.ArrayLike, stored: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """``|<q_b|s_i>|**2`` for every query row ``b`` and stored row ``i``: ``[B, N]`` float64."""
    q = np.atleast_2d(np.asarray(queries))
    s = np.atleast_2d(np.asarray(stored))
    overlap = np.conj(q) @ s.T
    return np.asarray(overlap.real**2 + overlap.imag**2, dtype=np.float64)


def top_k(
    fidelity: npt.ArrayLike,
    ids: Sequence[str],
    k: int,
    metadata: Sequence[Mapping[str, Any]] | None = None,
) -> list[Any]:
    """The ``k`` best of one query's candidates as :class:`Match` objects, by fidelity
    descending and id ascending on ties (the order every store returns).

    >>> [m.id for m in top_k([0.5, 0.9, 0.5], ["b", "c", "a"], 2)]
    ['c', 'a']
    """
    from qstore.core.stores.base import Match

    f = np.asarray(fidelity, dtype=np.float64)
    best = heapq.nsmallest(k, range(len(ids)), key=lambda i: (-f[i], ids[i]))
    return [
        Match(ids[i], min(float(f[i]), 1.0), dict(metadata[i]) if metadata is not None else {})
        for i in best
    ]


def n_qubits_of(width: int) -> int:
    """Number of qubits of a state with ``width`` amplitudes."""
    return int(math.log2(width))
