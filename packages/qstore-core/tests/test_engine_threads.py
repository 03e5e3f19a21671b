"""The NumPy engine runs small simulations on one BLAS thread and leaves the rest alone."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from qstore.core.engine import threads
from qstore.core.engine.generic import NumpyOps

threadpoolctl = pytest.importorskip("threadpoolctl")


def _blas_threads() -> list[int]:
    return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]


def test_small_simulations_use_one_blas_thread_and_restore_the_setting() -> None:
    np.ones((2, 2)) @ np.ones((2, 2))  # make sure the BLAS library is loaded
    before = _blas_threads()
    if not before:
        pytest.skip("NumPy's BLAS is not visible to threadpoolctl here")
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        assert _blas_threads() == [2] * len(before)
        with NumpyOps().scope(n_qubits=8, rows=32):
            assert _blas_threads() == [1] * len(before)
        assert _blas_threads() == [2] * len(before)
        big = threads.SINGLE_THREAD_MAX.bit_length()  # 2**big > the limit for one row
        with NumpyOps().scope(n_qubits=big, rows=1):
            assert _blas_threads() == [2] * len(before)
    assert _blas_threads() == before


def test_the_limit_applies_when_the_engine_runs_in_another_thread() -> None:
    """threadpoolctl lets only one thread change an OpenBLAS limit; the engine runs in others
    too (TensorFlow's numpy_function threads, the split pool), and its limit must hold there."""
    np.ones((2, 2)) @ np.ones((2, 2))
    before = _blas_threads()
    if not before:
        pytest.skip("NumPy's BLAS is not visible to threadpoolctl here")
    seen: list[list[int]] = []

    def work() -> None:
        with NumpyOps().scope(n_qubits=8, rows=32):
            seen.append(_blas_threads())
        seen.append(_blas_threads())

    with threadpoolctl.threadpool_limits(2, user_api="blas"):  # this thread now controls it
        worker = threading.Thread(target=work)
        worker.start()
        worker.join()
        assert seen == [[1] * len(before), [2] * len(before)]
    assert _blas_threads() == before
