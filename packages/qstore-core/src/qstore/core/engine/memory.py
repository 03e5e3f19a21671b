"""How much memory the simulators may use, checked before anything is allocated."""

from __future__ import annotations

import os

import numpy as np

from qstore.core.errors import ResourceLimitError

__all__ = ["DTYPES", "check_memory", "memory_limit_bytes"]

DTYPES = {"complex128": np.complex128, "complex64": np.complex64}


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
