"""The seed's Keras example with ``backend='qsim'`` (SPEC §8) against the default backend.

The demo's Fashion-MNIST model (PCA 64 -> Dense(32) -> AmplitudeEncoding(6) -> QuantumLayer(6,
depth 4) -> ExpectationValue -> Dense(128) -> Dropout -> Dense(10)), 3 epochs on 2,000 training
images, once with ``QuantumLayer(..., backend='qsim')`` and once on the default backend, in the
same process (the default first, so that both find the runtime started). Target (PERF.md): the
qsim model trains in at most 2x the default's time.

    QSTORE_DATA_DIR=/path/to/datasets python benchmarks/qsim_example.py [--epochs 3]
"""

from __future__ import annotations

import argparse
import time

from qstore.core.demos.fashion_mnist import load_data
from qstore.tf import layers
from qstore.tf.demos import fashion_mnist as demo


def fit_seconds(backend: str, data: object, epochs: int) -> tuple[float, float]:
    keras = demo.keras_module()
    keras.utils.set_random_seed(0)

    def block(_: object) -> list[object]:
        return [
            layers.AmplitudeEncoding(n_qubits=demo.N_QUBITS),
            layers.QuantumLayer(n_qubits=demo.N_QUBITS, depth=demo.DEPTH, backend=backend),
            layers.ExpectationValue(observables=demo.z_observables()),
        ]

    model = demo.build_keras_model(keras, block)
    t0 = time.perf_counter()
    history = demo.fit_keras(model, data, epochs=epochs)  # type: ignore[arg-type]
    return time.perf_counter() - t0, float(history.val_accuracy[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--n-train", type=int, default=2000)
    p.add_argument("--data-dir")
    args = p.parse_args()
    data = load_data(args.data_dir, args.n_train, 1000, seed=0)
    default_s, default_acc = fit_seconds("tf", data, args.epochs)
    qsim_s, qsim_acc = fit_seconds("qsim", data, args.epochs)
    print(f"default backend: {default_s:.1f} s (validation accuracy {default_acc:.3f})")
    print(f"backend='qsim':  {qsim_s:.1f} s (validation accuracy {qsim_acc:.3f})")
    print(f"ratio: {qsim_s / default_s:.2f}x (target: at most 2x)")


if __name__ == "__main__":
    main()
