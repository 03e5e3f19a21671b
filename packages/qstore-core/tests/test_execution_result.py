"""``ExecutionResult``: exact and sampled values named so, properties vs methods, deprecations.

References: closed forms for product states of RY rotations (``<Z> = cos(angle)``) and the
counts themselves, summed by hand.
"""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest

import qstore.core as qc
from qstore.core.backends.base import ExecutionResult
from qstore.core.errors import BackendError, ObservableError

A, B = 0.7, 2.1


def ry_pair() -> qc.UnifiedCircuit:
    # RY(a) (x) RY(b) on |00>: <Z0> = cos a, <Z1> = cos b, <Z0 Z1> = cos a cos b
    return qc.UnifiedCircuit(2).add_gate("RY", 0, A).add_gate("RY", 1, B)


def run(shots: int | None, seed: int = 5) -> ExecutionResult:
    return asyncio.run(qc.backends.get("local", seed=seed).execute(ry_pair(), shots=shots))


def by_hand(counts: dict[str, int], qubit: int) -> float:
    total = sum(counts.values())
    return sum((1 - 2 * int(bits[qubit])) * n for bits, n in counts.items()) / total


def test_exact_run_expectations_are_exact() -> None:
    r = run(None)
    exact = [math.cos(A), math.cos(B)]
    assert r.shots is None and r.counts is None and r.sampled_expectations is None
    assert r.exact_expectations is not None and r.expectations is not None
    np.testing.assert_allclose(r.expectations, exact, atol=1e-12)
    np.testing.assert_array_equal(r.expectations, r.exact_expectations)
    assert r.distribution == dict(r.probabilities or {})
    p00 = math.cos(A / 2) ** 2 * math.cos(B / 2) ** 2
    assert r.distribution["00"] == pytest.approx(p00, abs=1e-12)
    assert r.expectation(qc.Z(0) * qc.Z(1)) == pytest.approx(math.cos(A) * math.cos(B), abs=1e-12)
    assert r.expectation_z(1) == pytest.approx(math.cos(B), abs=1e-12)
    # the most probable of 00, 01, 10, 11 for these angles
    probs = {
        f"{i}{j}": (math.cos(A / 2) ** 2 if i == 0 else math.sin(A / 2) ** 2)
        * (math.cos(B / 2) ** 2 if j == 0 else math.sin(B / 2) ** 2)
        for i in (0, 1)
        for j in (0, 1)
    }
    assert r.most_frequent_bitstring == max(probs, key=lambda k: probs[k])


def test_shots_run_expectations_are_estimated_from_the_counts() -> None:
    r = run(4000)
    assert r.shots == 4000 and r.counts is not None and sum(r.counts.values()) == 4000
    counts = dict(r.counts)
    sampled = [by_hand(counts, 0), by_hand(counts, 1)]
    assert r.sampled_expectations is not None and r.expectations is not None
    np.testing.assert_allclose(r.sampled_expectations, sampled, atol=1e-15)
    np.testing.assert_array_equal(r.expectations, r.sampled_expectations)
    # the simulator also knows the exact values, and says so by name
    assert r.exact_expectations is not None
    np.testing.assert_allclose(r.exact_expectations, [math.cos(A), math.cos(B)], atol=1e-12)
    assert not np.allclose(r.expectations, r.exact_expectations, atol=1e-6)  # shot noise
    np.testing.assert_allclose(r.expectations, r.exact_expectations, atol=5 / math.sqrt(4000))
    assert r.expectation_z(0) == pytest.approx(sampled[0], abs=1e-15)
    assert r.distribution == pytest.approx({k: v / 4000 for k, v in counts.items()})
    assert r.most_frequent_bitstring == max(counts, key=lambda k: counts[k])


def test_a_counts_only_result_like_hardware() -> None:
    r = ExecutionResult("qpu", 3, 8, counts={"000": 5, "101": 3})
    assert r.exact_expectations is None
    assert r.expectations is not None
    np.testing.assert_allclose(r.expectations, [2 / 8, 1.0, 2 / 8])
    assert r.expectation(qc.Z(0) * qc.Z(2)) == 1.0
    assert r.expectation(2 * qc.Z(1) - qc.Z(0)) == pytest.approx(2 - 0.25)
    assert r.most_frequent_bitstring == "000"


def test_an_exact_result_with_probabilities_only_derives_its_expectations() -> None:
    r = ExecutionResult("sim", 2, None, probabilities={"01": 0.25, "11": 0.75})
    assert r.expectations is not None
    np.testing.assert_allclose(r.expectations, [-0.5, -1.0])
    assert r.sampled_expectations is None


def test_expectation_of_non_diagonal_or_out_of_range_observables_is_refused() -> None:
    r = run(None)
    with pytest.raises(ObservableError, match=r"backend\.expectation"):
        r.expectation(qc.X(0))
    with pytest.raises(ObservableError):
        r.expectation(qc.Z(5))
    with pytest.raises(BackendError, match="neither counts nor probabilities"):
        _ = ExecutionResult("x", 1, None).most_frequent_bitstring
    assert ExecutionResult("x", 1, None).expectations is None


def test_old_names_keep_working_with_a_deprecation_warning() -> None:
    r = run(200)
    with pytest.warns(DeprecationWarning, match="most_frequent_bitstring"):
        assert r.most_frequent() == r.most_frequent_bitstring
    with pytest.warns(DeprecationWarning, match="exact_expectations"):
        old = ExecutionResult("sim", 1, None, probabilities={"0": 1.0}, expectations=[1.0])
    assert old.exact_expectations is not None and old.exact_expectations.tolist() == [1.0]
    positional = ExecutionResult("sim", 1, None, None, {"1": 1.0}, [-1.0], {"k": "v"})
    assert positional.expectations is not None and positional.expectations.tolist() == [-1.0]
    assert positional.metadata == {"k": "v"}
