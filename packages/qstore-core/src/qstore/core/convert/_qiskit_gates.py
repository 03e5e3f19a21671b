"""Qiskit gate classes for the IonQ native gates, in radians (imported only with Qiskit).

Their names (``qstore_gpi``, ``qstore_gpi2``, ``qstore_ms``, ``qstore_zz``) differ on purpose from
qiskit-ionq's ``gpi``/``gpi2``/``ms``/``zz``, which take *turns*: a tool that does not know ours
falls back to the ``definition`` (standard gates, exact, no global phase) instead of reading
radians as turns. :func:`~qstore.core.convert.qiskit.from_qiskit` recognises them by name, so
they also survive QPY round trips that drop the Python class.
"""

from __future__ import annotations

import math
from typing import Any

from qiskit.circuit import Gate, QuantumCircuit

from qstore.core.convert.qiskit import reverse_qubit_order
from qstore.core.gates import get_gate


class _IonQNativeGate(Gate):  # type: ignore[misc]
    qstore_name = ""
    qiskit_name = ""

    def __init__(self, *params: Any, label: str | None = None) -> None:
        spec = get_gate(self.qstore_name)
        super().__init__(self.qiskit_name, spec.n_qubits, list(params), label=label)

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        if copy is False:
            raise ValueError("unable to avoid copy while creating an array as requested")
        values = [float(p) for p in self.params]  # TypeError while parameters are unbound
        m = reverse_qubit_order(get_gate(self.qstore_name).matrix(values))
        return m if dtype is None else m.astype(dtype)

    def inverse(self, annotated: bool = False) -> Any:
        name, params = get_gate(self.qstore_name).inverse(tuple(self.params))
        return GATE_CLASSES[name](*params)


class QStoreGPIGate(_IonQNativeGate):
    """IonQ ``GPI(phi) = [[0, e^{-i phi}], [e^{i phi}, 0]]``, ``phi`` in radians."""

    qstore_name = "GPI"
    qiskit_name = "qstore_gpi"

    def _define(self) -> None:
        (phi,) = self.params
        qc = QuantumCircuit(1, name=self.name)
        qc.rz(-phi, 0)
        qc.x(0)
        qc.rz(phi, 0)
        self.definition = qc


class QStoreGPI2Gate(_IonQNativeGate):
    """IonQ ``GPI2(phi) = [[1, -i e^{-i phi}], [-i e^{i phi}, 1]] / sqrt(2)``, in radians."""

    qstore_name = "GPI2"
    qiskit_name = "qstore_gpi2"

    def _define(self) -> None:
        (phi,) = self.params
        qc = QuantumCircuit(1, name=self.name)
        qc.rz(-phi, 0)
        qc.rx(math.pi / 2, 0)
        qc.rz(phi, 0)
        self.definition = qc


class QStoreMSGate(_IonQNativeGate):
    """IonQ ``MS(phi0, phi1, theta) = exp(-i theta/2 s(phi0) (x) s(phi1))``, in radians.

    ``s(phi) = cos(phi) X + sin(phi) Y``; ``phi0`` belongs to the first qubit argument.
    """

    qstore_name = "MS"
    qiskit_name = "qstore_ms"

    def _define(self) -> None:
        phi0, phi1, theta = self.params
        qc = QuantumCircuit(2, name=self.name)
        qc.rz(-phi0, 0)
        qc.rz(-phi1, 1)
        qc.rxx(theta, 0, 1)
        qc.rz(phi0, 0)
        qc.rz(phi1, 1)
        self.definition = qc


class QStoreZZGate(_IonQNativeGate):
    """IonQ ``ZZ(theta) = exp(-i theta Z Z / 2)``, in radians."""

    qstore_name = "ZZ"
    qiskit_name = "qstore_zz"

    def _define(self) -> None:
        (theta,) = self.params
        qc = QuantumCircuit(2, name=self.name)
        qc.rzz(theta, 0, 1)
        self.definition = qc


GATE_CLASSES: dict[str, type[_IonQNativeGate]] = {
    cls.qstore_name: cls for cls in (QStoreGPIGate, QStoreGPI2Gate, QStoreMSGate, QStoreZZGate)
}
BY_QISKIT_NAME: dict[str, str] = {cls.qiskit_name: cls.qstore_name for cls in GATE_CLASSES.values()}
