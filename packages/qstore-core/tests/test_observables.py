"""Pauli strings and sums: algebra against dense matrices, and conversion from Cirq and Qiskit
compared with those libraries' own matrices (Qiskit's bit order reversed here by index arithmetic).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qstore.core.observables as obs
from qstore.core.errors import ObservableError, QStoreError

cirq = pytest.importorskip("cirq")
qiskit = pytest.importorskip("qiskit")
from qiskit.quantum_info import Pauli, SparsePauliOp  # noqa: E402

FAST = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
DENSE = {
    "I": np.eye(2),
    "X": np.array([[0, 1], [1, 0]]),
    "Y": np.array([[0, -1j], [1j, 0]]),
    "Z": np.diag([1, -1]),
}


def dense(label: str) -> np.ndarray[Any, Any]:
    """Big-endian dense matrix of a label: label[q] acts on qubit q (qubit 0 most significant)."""
    out = np.eye(1)
    for letter in label:
        out = np.kron(out, DENSE[letter])
    return out


def big_endian(m_little: Any, n: int) -> np.ndarray[Any, Any]:
    perm = [int(format(i, f"0{n}b")[::-1], 2) for i in range(1 << n)]
    return np.asarray(m_little)[np.ix_(perm, perm)]


def string_of(label: str, coeff: complex = 1.0) -> obs.PauliString:
    out: Any = obs.identity(1.0)
    for q, letter in enumerate(label):
        if letter != "I":
            out = out * getattr(obs, letter)(q)
    return out * coeff


def matrix(o: Any, n: int) -> np.ndarray[Any, Any]:
    return obs.PauliSum((o,)).matrix(n) if isinstance(o, obs.PauliString) else o.matrix(n)


labels = st.integers(1, 3).flatmap(
    lambda n: st.lists(st.sampled_from("IXYZ"), min_size=n, max_size=n).map("".join)
)
reals = st.floats(-3, 3, allow_nan=False, allow_subnormal=False)


@st.composite
def label_pairs(draw: st.DrawFn) -> tuple[str, str]:
    n = draw(st.integers(1, 3))
    one = st.lists(st.sampled_from("IXYZ"), min_size=n, max_size=n).map("".join)
    return draw(one), draw(one)


# ---------------------------------------------------------------------------------------------
# algebra


@FAST
@given(label_pairs(), reals, reals)
def test_products_and_sums_match_dense_matrices(pair: tuple[str, str], a: float, b: float) -> None:
    la, lb = pair
    n = len(la)
    pa, pb = string_of(la, a), string_of(lb, b)
    ma, mb = a * dense(la), b * dense(lb)
    np.testing.assert_allclose(matrix(pa * pb, n), ma @ mb, atol=1e-12)
    np.testing.assert_allclose(matrix(pa + pb, n), ma + mb, atol=1e-12)
    np.testing.assert_allclose(matrix(pa - pb, n), ma - mb, atol=1e-12)
    np.testing.assert_allclose(matrix(-pa, n), -ma, atol=1e-12)
    np.testing.assert_allclose(matrix(2.5 * (pa + pb), n), 2.5 * (ma + mb), atol=1e-12)
    np.testing.assert_allclose(matrix((pa + pb) * (pa - pb), n), (ma + mb) @ (ma - mb), atol=1e-12)
    np.testing.assert_allclose(matrix(pa + 1.5, n), ma + 1.5 * np.eye(1 << n), atol=1e-12)


def test_single_qubit_pauli_products_follow_the_pauli_algebra() -> None:
    x, y, z = obs.X(0), obs.Y(0), obs.Z(0)
    assert x * y == 1j * z and y * z == 1j * x and z * x == 1j * y
    assert y * x == -1j * z
    assert x * x == obs.identity()
    np.testing.assert_allclose(matrix(x * y, 1), DENSE["X"] @ DENSE["Y"])


def test_labels_and_readable_strings() -> None:
    o = 0.5 * obs.Z(0) * obs.X(2)
    assert o.label(3) == "ZIX"
    assert obs.from_label("ZIX", 0.5) == o
    np.testing.assert_allclose(matrix(o, 3), 0.5 * dense("ZIX"))
    assert str(o) == "0.5*Z(0)*X(2)"
    assert str(obs.Z(0) + obs.X(1)) == "Z(0) + X(1)"


def test_simplify_merges_and_drops_cancelled_terms() -> None:
    s = obs.Z(0) + obs.Z(0) - 2 * obs.Z(0) + obs.X(1)
    assert s.n_terms == 1
    np.testing.assert_allclose(s.matrix(2), dense("IX"))


# ---------------------------------------------------------------------------------------------
# Cirq


@FAST
@given(st.lists(st.tuples(labels, reals), min_size=1, max_size=4))
def test_cirq_pauli_sum_converts_to_the_same_matrix(terms: list[tuple[str, float]]) -> None:
    n = 3
    qubits = cirq.LineQubit.range(n)
    total: Any = 0
    for label, coeff in terms:
        ps = cirq.PauliString(
            {qubits[q]: getattr(cirq, p) for q, p in enumerate(label) if p != "I"},
            coefficient=coeff,
        )
        total = total + ps
    ours = obs.as_observable(total, n_qubits=n)
    expected = cirq.PauliSum.wrap(total).matrix(qubits)  # Cirq: qubit 0 most significant too
    np.testing.assert_allclose(ours.matrix(n), expected, atol=1e-12)


def test_cirq_z_list_means_z_on_qubit_i() -> None:
    n = 4
    out = obs.as_observables([cirq.Z] * n, n)
    qubits = cirq.LineQubit.range(n)
    for i, o in enumerate(out):
        expected = cirq.PauliString({qubits[i]: cirq.Z}).matrix(qubits)
        np.testing.assert_allclose(o.matrix(n), expected)
    mixed = obs.as_observables([cirq.X, cirq.Z(qubits[3]), "ZZII"], n)
    np.testing.assert_allclose(mixed[0].matrix(n), dense("XIII"))
    np.testing.assert_allclose(mixed[1].matrix(n), dense("IIIZ"))
    np.testing.assert_allclose(mixed[2].matrix(n), dense("ZZII"))


def test_cirq_grid_qubits_need_a_qubit_map() -> None:
    g = cirq.GridQubit(0, 1)
    with pytest.raises(ObservableError, match="qubit_map"):
        obs.as_observable(cirq.Z(g))
    o = obs.as_observable(
        cirq.Z(g) * cirq.X(cirq.GridQubit(0, 0)), qubit_map={g: 0, cirq.GridQubit(0, 0): 1}
    )
    np.testing.assert_allclose(o.matrix(2), dense("ZX"))


# ---------------------------------------------------------------------------------------------
# Qiskit


@FAST
@given(st.lists(st.tuples(labels.filter(lambda s: len(s) == 3), reals), min_size=1, max_size=4))
def test_qiskit_sparse_pauli_op_converts_with_bit_order_reversed(
    terms: list[tuple[str, float]],
) -> None:
    op = SparsePauliOp([label for label, _ in terms], coeffs=[c for _, c in terms])
    ours = obs.as_observable(op, n_qubits=3)
    np.testing.assert_allclose(ours.matrix(3), big_endian(op.to_matrix(), 3), atol=1e-12)


def test_qiskit_labels_are_read_right_to_left() -> None:
    o = obs.as_observable(SparsePauliOp("IZ"))  # Z on Qiskit qubit 0
    assert o == obs.PauliSum((obs.Z(0),))
    np.testing.assert_allclose(o.matrix(2), np.diag([1, 1, -1, -1]))  # docs/conventions.md
    np.testing.assert_allclose(SparsePauliOp("IZ").to_matrix(), np.diag([1, -1, 1, -1]))
    signed = obs.as_observable(Pauli("-XY"))
    np.testing.assert_allclose(signed.matrix(2), -dense("YX"))


# ---------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: obs.Z(-1), "non-negative int"),
        (lambda: obs.X(1.0), "non-negative int"),
        (lambda: obs.PauliString.from_dict({0: "Q"}), "Unknown Pauli"),
        (lambda: obs.as_observable(obs.Z(3), n_qubits=2), "only 2 qubits"),
        (lambda: obs.as_observable(1j * obs.Z(0)), "not Hermitian"),
        (lambda: obs.as_observable(3.5), "Unsupported observable"),
        (lambda: obs.as_observable(cirq.Z), "without a qubit"),
        (lambda: obs.as_observables([], 2), "empty"),
        (lambda: obs.PauliSum((obs.Z(2),)).matrix(2), "n_qubits is 2"),
        (lambda: obs.Z(0) + "x", "Cannot combine"),
    ],
)
def test_errors_name_the_problem(call: Any, message: str) -> None:
    with pytest.raises(ObservableError) as info:
        call()
    assert message in str(info.value)
    assert isinstance(info.value, QStoreError)


def test_default_observables_are_z_on_every_qubit() -> None:
    out = obs.as_observables(None, 3)
    for q, o in enumerate(out):
        np.testing.assert_allclose(
            o.matrix(3), dense("".join("Z" if i == q else "I" for i in range(3)))
        )
