"""Real data sets for demos, tests and benchmarks, loaded from local files (never downloaded
unless asked)."""

from qstore.core.datasets.fashion_mnist import (
    FASHION_MNIST_FILES,
    DatasetNotFoundError,
    download_fashion_mnist,
    find_fashion_mnist,
    load_fashion_mnist,
    read_idx,
)

__all__ = [
    "FASHION_MNIST_FILES",
    "DatasetNotFoundError",
    "download_fashion_mnist",
    "find_fashion_mnist",
    "load_fashion_mnist",
    "read_idx",
]
