"""Forward passes of the torch layers against independent references: the core's ``local``
backend, Cirq's simulator, and circuits and states written out by hand."""

from __future__ import annotations

import math
from typing import Any

import cirq
import numpy as np
import pytest
import torch
from torch import nn

import qstore.core as qc
from qstore.core.backends.local import LocalBackend
from qstore.core.errors import QStoreError
from qstore.torch import (
    AmplitudeEncoding,
    CircuitLayer,
    ExpectationValue,
    LayerConfigError,
    LayerInputError,
    QuantumLayer,
)

N = 3


def cirq_states(
    circuit: qc.UnifiedCircuit,
    names: tuple[str, ...],
    inputs: np.ndarray,
    weights: dict[str, float],
    initial: np.ndarray | None = None,
) -> np.ndarray:
    """Final states from Cirq's simulator, one sample at a time."""
    qubits = cirq.LineQubit.range(circuit.n_qubits)
    sim = cirq.Simulator(dtype=np.complex128)
    out = []
    for i, row in enumerate(inputs):
        params = dict(weights, **{k: float(v) for k, v in zip(names, row, strict=True)})
        res = sim.simulate(
            circuit.to_cirq(),
            param_resolver=cirq.ParamResolver(params),
            qubit_order=qubits,
            initial_state=None if initial is None else initial[i].astype(np.complex128),
        )
        out.append(res.final_state_vector)
    return np.array(out)


def cirq_expectations(states: np.ndarray, observables: list[Any]) -> np.ndarray:
    n = int(np.log2(states.shape[1]))
    qubits = cirq.LineQubit.range(n)
    qmap = {q: i for i, q in enumerate(qubits)}
    return np.array(
        [
            [cirq.PauliSum.wrap(o).expectation_from_state_vector(s, qmap).real for o in observables]
            for s in states
        ]
    )


def z_all(n: int) -> list[Any]:
    return [cirq.Z(q) for q in cirq.LineQubit.range(n)]


@pytest.mark.parametrize("entanglement", ["linear", "circular", "full"])
@pytest.mark.parametrize(
    ("encoding", "n_features"),
    [("angle", N), ("angle", 2), ("angle", 8), ("reupload", N), ("reupload", 5)],
)
def test_outputs_equal_local_backend_and_cirq(
    entanglement: str, encoding: str, n_features: int
) -> None:
    torch.manual_seed(1)
    layer = QuantumLayer(N, depth=2, entanglement=entanglement, encoding=encoding).double()
    if layer.input_scaling is not None:
        with torch.no_grad():
            layer.input_scaling.uniform_(0.5, 1.5)
    x = torch.rand(4, n_features, dtype=torch.float64) * math.pi
    out = layer(x).detach().numpy()
    b = layer.bindings(x)
    local = LocalBackend().expectation(
        b.circuit, None, b.inputs.numpy(), names=b.input_names, shared=b.weights
    )
    ref = cirq_expectations(
        cirq_states(b.circuit, b.input_names, b.inputs.numpy(), b.weights), z_all(N)
    )
    np.testing.assert_allclose(out, local, atol=1e-12)
    np.testing.assert_allclose(out, ref, atol=1e-12)


def _ops(circuit: qc.UnifiedCircuit) -> list[tuple[str, tuple[int, ...], str]]:
    return [(op.gate, op.qubits, str(op.params[0]) if op.params else "") for op in circuit]


def test_circuit_follows_the_documented_template() -> None:
    layer = QuantumLayer(3, depth=2, entanglement="circular")
    cnots = [("CNOT", (0, 1), ""), ("CNOT", (1, 2), ""), ("CNOT", (2, 0), "")]
    # 7 features on 3 qubits, 2 layers: chunks 0 and 1 (RY, then RZ) before layer 0, chunk 2
    # (only feature 6, on qubit 0) before layer 1
    expected = [
        ("RY", (0,), "x_0"), ("RY", (1,), "x_1"), ("RY", (2,), "x_2"),
        ("RZ", (0,), "x_3"), ("RZ", (1,), "x_4"), ("RZ", (2,), "x_5"),
        *[g for q in range(3) for g in [("RY", (q,), f"w_0_{q}_0"), ("RZ", (q,), f"w_0_{q}_1")]],
        *cnots,
        ("RY", (0,), "x_6"),
        *[g for q in range(3) for g in [("RY", (q,), f"w_1_{q}_0"), ("RZ", (q,), f"w_1_{q}_1")]],
        *cnots,
    ]  # fmt: skip
    assert _ops(layer.circuit(7)) == expected
    full = QuantumLayer(4, depth=1, entanglement="full").circuit(4)
    assert [op.qubits for op in full if op.gate == "CNOT"] == [
        (0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)
    ]  # fmt: skip
    # F <= n: RY(x_i) on qubit i, then the trainable layer (the reference workload's layout)
    assert _ops(QuantumLayer(3, depth=1).circuit(2))[:3] == [
        ("RY", (0,), "x_0"), ("RY", (1,), "x_1"), ("RY", (0,), "w_0_0_0")
    ]  # fmt: skip
    # reupload: all chunks before every layer
    re_ops = _ops(QuantumLayer(2, depth=2, encoding="reupload").circuit(3))
    assert [op for op in re_ops if op[2].startswith("x")] == [
        ("RY", (0,), "x_0_0"), ("RY", (1,), "x_0_1"), ("RZ", (0,), "x_0_2"),
        ("RY", (0,), "x_1_0"), ("RY", (1,), "x_1_1"), ("RZ", (0,), "x_1_2"),
    ]  # fmt: skip
    # the state-input circuit is the trainable part alone
    assert [op for op in _ops(layer.circuit()) if op[2].startswith("x")] == []


def test_weights_shape_and_initialisation_are_seeded() -> None:
    torch.manual_seed(7)
    a = QuantumLayer(4, depth=3)
    torch.manual_seed(7)
    b = QuantumLayer(4, depth=3)
    assert a.weights.shape == (3, 4, 2)
    assert torch.equal(a.weights, b.weights)
    assert 0.0 <= float(a.weights.detach().min()) <= float(a.weights.detach().max()) < 2 * math.pi
    assert [name for name, _ in a.named_parameters()] == ["weights"]
    r = QuantumLayer(4, depth=3, encoding="reupload")
    assert [name for name, _ in r.named_parameters()] == ["weights", "input_scaling"]
    assert torch.equal(r.input_scaling, torch.ones(3, 4))


def test_sixty_four_features_into_eight_qubits_train_with_a_plain_loop() -> None:
    """SPEC §8: QuantumLayer(n_qubits=8, depth=4) fed 64 features, then nn.Linear(8, 10)."""
    torch.manual_seed(0)
    model = nn.Sequential(QuantumLayer(n_qubits=8, depth=4), nn.Linear(8, 10))
    teacher = nn.Sequential(QuantumLayer(n_qubits=8, depth=4), nn.Linear(8, 10))
    x = torch.rand(32, 64) * math.pi
    with torch.no_grad():
        y = teacher(x)  # a target the model can represent
    assert model(x).shape == (32, 10)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert model[0].weights.grad is not None


def test_default_dtype_is_float32_and_double_switches_to_complex128() -> None:
    layer = QuantumLayer(3, depth=1)
    x = torch.rand(2, 3)
    assert layer(x).dtype == torch.float32
    assert layer(x.double()).dtype == torch.float32  # the module's precision decides
    state = AmplitudeEncoding(3)(x)
    assert state.dtype == torch.complex64 and layer(state).dtype == torch.complex64
    layer.double()
    assert layer(x).dtype == torch.float64
    assert layer(state).dtype == torch.complex128
    # float32 agrees with float64 to single precision
    single = QuantumLayer(3, depth=1)
    single.load_state_dict({"weights": layer.weights.float()})
    torch.testing.assert_close(single(x).double(), layer(x), atol=2e-6, rtol=0)


def test_leading_dimensions_are_kept() -> None:
    layer = QuantumLayer(2, depth=1)
    x = torch.rand(2, 3, 5)
    out = layer(x)
    assert out.shape == (2, 3, 2)
    torch.testing.assert_close(out.reshape(6, 2), layer(x.reshape(6, 5)))
    assert layer(torch.rand(5)).shape == (2,)
    assert layer(torch.rand(0, 5)).shape == (0, 2)


def test_amplitude_encoding_pads_and_normalises() -> None:
    x = torch.tensor([[3.0, 0.0, 4.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    s = AmplitudeEncoding(2)(x)
    expected = torch.tensor([[0.6, 0.0, 0.8, 0.0], [1.0, 0.0, 0.0, 0.0]], dtype=torch.complex128)
    torch.testing.assert_close(s, expected)
    with pytest.raises(LayerInputError, match="5 features do not fit in the 4 amplitudes"):
        AmplitudeEncoding(2)(torch.rand(1, 5))


@pytest.mark.parametrize("entanglement", ["linear", "full"])
def test_amplitude_pipeline_equals_cirq_with_initial_state(entanglement: str) -> None:
    """The seed's Keras shape in torch: AmplitudeEncoding -> QuantumLayer -> ExpectationValue."""
    torch.manual_seed(2)
    q = cirq.LineQubit.range(N)
    obs = [cirq.Z(q[0]), cirq.Z(q[0]) * cirq.Z(q[1]), 0.5 * cirq.X(q[2]) + cirq.Y(q[1])]
    enc, layer, meas = AmplitudeEncoding(N), QuantumLayer(N, 2, entanglement=entanglement), None
    meas = ExpectationValue(observables=obs)
    model = nn.Sequential(enc, layer, meas).double()
    x = torch.rand(5, 6, dtype=torch.float64) - 0.3
    out = model(x).detach().numpy()
    init = np.zeros((5, 8))
    init[:, :6] = x.numpy() / np.linalg.norm(x.numpy(), axis=1, keepdims=True)
    weights = dict(
        zip(layer.weight_names(), layer.weights.detach().reshape(-1).tolist(), strict=True)
    )
    states = cirq_states(layer.circuit(), (), np.zeros((5, 0)), weights, initial=init)
    np.testing.assert_allclose(out, cirq_expectations(states, obs), atol=1e-12)
    # the state in the middle is the state Cirq computes
    mid = layer(enc(x)).detach().numpy()
    np.testing.assert_allclose(mid, states, atol=1e-12)
    # encoding='amplitude' is the same pipeline inside one layer
    inside = QuantumLayer(N, 2, entanglement=entanglement, encoding="amplitude", observables=obs)
    inside.double().load_state_dict(layer.state_dict())
    np.testing.assert_allclose(inside(x).detach().numpy(), out, atol=1e-12)


def test_expectation_value_accepts_cirq_qiskit_and_qstore_observables() -> None:
    from qiskit.quantum_info import SparsePauliOp

    rng = np.random.default_rng(3)
    psi = rng.normal(size=(4, 8)) + 1j * rng.normal(size=(4, 8))
    psi /= np.linalg.norm(psi, axis=1, keepdims=True)
    state = torch.from_numpy(psi)
    q = cirq.LineQubit.range(3)
    ref = cirq_expectations(psi, [cirq.Z(q[0]) * cirq.Z(q[1]), cirq.X(q[2]), cirq.Z(q[2])])
    # qiskit labels are little-endian: "IZZ" is Z on qubits 0 and 1
    qk = [SparsePauliOp("IZZ"), SparsePauliOp("XII"), SparsePauliOp("ZII")]
    own = [qc.Z(0) * qc.Z(1), qc.X(2), qc.Z(2)]
    for spec in (qk, own, [cirq.Z(q[0]) * cirq.Z(q[1]), cirq.X(q[2]), cirq.Z(q[2])]):
        got = ExpectationValue(observables=spec)(state)
        assert got.dtype == torch.float64
        np.testing.assert_allclose(got.numpy(), ref, atol=1e-12)
    # default: Z on every qubit, [cirq.Z] * n the same
    z = ExpectationValue()(state).numpy()
    np.testing.assert_allclose(z, cirq_expectations(psi, z_all(3)), atol=1e-12)
    np.testing.assert_allclose(ExpectationValue([cirq.Z] * 3)(state).numpy(), z, atol=1e-12)


def test_state_input_gives_the_state_of_the_core_simulator() -> None:
    torch.manual_seed(4)
    layer = QuantumLayer(N, depth=2, entanglement="full").double()
    rng = np.random.default_rng(5)
    psi = rng.normal(size=(3, 8)) + 1j * rng.normal(size=(3, 8))
    psi /= np.linalg.norm(psi, axis=1, keepdims=True)
    out = layer(torch.from_numpy(psi)).detach().numpy()
    u = layer.circuit().unitary(
        dict(zip(layer.weight_names(), layer.weights.detach().reshape(-1).tolist(), strict=True))
    )
    np.testing.assert_allclose(out, psi @ u.T, atol=1e-12)


def test_circuit_layer_with_expressions_equals_local_backend_and_cirq() -> None:
    x0, x1, w, theta = (qc.Parameter(s) for s in ("x0", "x1", "w", "theta"))
    c = qc.UnifiedCircuit(3)
    c.add_gate("H", 0).add_gate("RY", 1, x0).add_gate("RX", 2, 2 * theta + 0.1)
    c.add_gate("CRZ", [0, 1], x1 * w).add_gate("RZZ", [1, 2], theta).add_gate("CNOT", [2, 0])
    c.add_gate("U3", 2, [w, 0.3, x0]).add_gate("RX", 0, x1)
    layer = CircuitLayer(
        c, input_symbols=["x0", "x1"], initial_weights={"w": 0.7, "theta": -1.3}
    ).double()
    assert layer.weight_symbols == ("theta", "w")
    torch.testing.assert_close(layer.weights, torch.tensor([-1.3, 0.7], dtype=torch.float64))
    x = torch.rand(4, 2, dtype=torch.float64) * 3
    q = cirq.LineQubit.range(3)
    obs = [cirq.Z(q[0]) * cirq.Z(q[2]), cirq.X(q[1])]
    layer_obs = CircuitLayer(c, ["x0", "x1"], observables=obs, initial_weights=[-1.3, 0.7])
    out = layer_obs.double()(x).detach().numpy()
    shared = dict(zip(("theta", "w"), layer_obs.weights.tolist(), strict=True))
    local = LocalBackend().expectation(c, obs, x.numpy(), names=["x0", "x1"], shared=shared)
    states = cirq_states(c, ("x0", "x1"), x.numpy(), shared)
    np.testing.assert_allclose(out, local, atol=1e-12)
    np.testing.assert_allclose(out, cirq_expectations(states, obs), atol=1e-12)
    np.testing.assert_allclose(
        layer(x).detach().numpy(), cirq_expectations(states, z_all(3)), atol=1e-12
    )


def test_circuit_layer_without_inputs() -> None:
    c = qc.UnifiedCircuit(2).add_gate("RY", 0, "a").add_gate("CNOT", [0, 1])
    layer = CircuitLayer(c, initial_weights=[math.pi]).double()
    torch.testing.assert_close(layer(), torch.tensor([[-1.0, -1.0]], dtype=torch.float64))
    # a state input returns the final state: |00> -> RY(pi) -> |10> -> CNOT -> |11>
    ground = torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=torch.complex128)
    torch.testing.assert_close(
        layer(ground), torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=torch.complex128)
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_qubits": 0}, "n_qubits must be a positive int, got 0"),
        ({"n_qubits": 3, "depth": 0}, "depth must be a positive int, got 0"),
        ({"n_qubits": 3, "entanglement": "ring"}, "entanglement must be one of .* got 'ring'"),
        ({"n_qubits": 3, "encoding": "basis"}, "encoding must be one of .* got 'basis'"),
        (
            {"n_qubits": 3, "backend": "local", "encoding": "amplitude", "shots": 10},
            "shots=10 cannot apply to quantum-state inputs",
        ),
        (
            {"n_qubits": 3, "backend": "local", "gradient_method": "adjoint", "shots": 10},
            "cannot be combined with shots",
        ),
        ({"n_qubits": 3, "shots": 100}, "'torch' backend is exact and has no shots"),
        ({"n_qubits": 3, "gradient_method": "magic"}, "gradient_method must be one of"),
        ({"n_qubits": 3, "gradient_method": "parameter_shift"}, "differentiated by torch"),
        ({"n_qubits": 3, "observables": [qc.Z(5)]}, "Invalid observables for 3 qubits"),
        ({"n_qubits": 3, "backend": "no_such_backend"}, "Unknown backend 'no_such_backend'"),
    ],
)
def test_invalid_configuration_is_refused_at_construction(
    kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(QStoreError, match=match):
        QuantumLayer(**kwargs)


def test_config_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="entanglement"):
        QuantumLayer(3, entanglement="star")
    assert issubclass(LayerConfigError, QStoreError) and issubclass(LayerInputError, QStoreError)


def test_invalid_inputs_are_refused_with_the_shape_in_the_message() -> None:
    layer = QuantumLayer(3, depth=1)
    with pytest.raises(LayerInputError, match=r"at least one feature, got shape \[\]"):
        layer(torch.tensor(1.0))
    with pytest.raises(LayerInputError, match=r"at least one feature, got shape \[4, 0\]"):
        layer(torch.rand(4, 0))
    with pytest.raises(LayerInputError, match="2\\*\\*3 = 8 amplitudes; got 4"):
        layer(torch.rand(2, 4, dtype=torch.complex64))
    with pytest.raises(LayerInputError, match="shape \\[batch, 2\\*\\*n_qubits\\]"):
        layer(torch.rand(2, 6, dtype=torch.complex64))
    with pytest.raises(LayerInputError, match="shots=5 cannot apply to quantum-state inputs"):
        QuantumLayer(3, depth=1, backend="local", shots=5)(torch.rand(2, 8, dtype=torch.complex64))
    with pytest.raises(LayerInputError, match="takes quantum states"):
        ExpectationValue()(torch.rand(2, 8))
    with pytest.raises(LayerInputError, match="acts on 2 qubits"):
        ExpectationValue(n_qubits=2)(torch.rand(2, 8, dtype=torch.complex64))
    c = qc.UnifiedCircuit(2).add_gate("RY", 0, "x").add_gate("RX", 1, "w")
    cl = CircuitLayer(c, ["x"])
    with pytest.raises(
        LayerInputError, match=r"shape \[batch, 1\] \(columns \['x'\]\), got \[3, 2\]"
    ):
        cl(torch.rand(3, 2))
    with pytest.raises(LayerInputError, match="takes inputs for \\['x'\\]"):
        cl()


def test_circuit_layer_configuration_errors() -> None:
    c = qc.UnifiedCircuit(2).add_gate("RY", 0, "x").add_gate("RX", 1, "w")
    with pytest.raises(LayerConfigError, match=r"input_symbols \['y'\] do not occur"):
        CircuitLayer(c, ["y"])
    with pytest.raises(LayerConfigError, match="not the string 'x'"):
        CircuitLayer(c, "x")
    with pytest.raises(LayerConfigError, match=r"symbols \['w'\] are neither inputs nor weights"):
        CircuitLayer(c, ["x"], weight_symbols=[])
    with pytest.raises(LayerConfigError, match="has 3 values; the layer has 1 weights"):
        CircuitLayer(c, ["x"], initial_weights=[1.0, 2.0, 3.0])
    with pytest.raises(LayerConfigError, match="UnifiedCircuit, got Circuit"):
        CircuitLayer(cirq.Circuit())  # type: ignore[arg-type]
