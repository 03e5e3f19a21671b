"""Fashion-MNIST from its four standard IDX gzip files.

Search order when no directory is given (the first that holds all four files wins):

1. ``$QSTORE_DATA_DIR/fashion-mnist`` and ``$QSTORE_DATA_DIR``;
2. ``~/.keras/datasets/fashion-mnist`` (where Keras keeps its copy);
3. ``~/.cache/qstore/datasets/fashion-mnist`` (where :func:`download_fashion_mnist` writes);
4. ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist`` package).

Nothing is downloaded unless ``download=True`` (or ``qstore demo --download``); downloads are
verified against the official MD5 sums. They come from the official address, or from a mirror
named by ``$QSTORE_FASHION_MNIST_URL`` (a directory URL holding the four files).

>>> # (x_train, y_train), (x_test, y_test) = load_fashion_mnist("/path/to/fashion-mnist")
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import shutil
import struct
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
import numpy.typing as npt

from qstore.core.errors import QStoreError

log = logging.getLogger(__name__)

OFFICIAL_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

#: file name -> (MD5 of the .gz file, number of items)
FASHION_MNIST_FILES: dict[str, tuple[str, int]] = {
    "train-images-idx3-ubyte.gz": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", 60000),
    "train-labels-idx1-ubyte.gz": ("25c81989df183df01b3e8a0aad5dffbe", 60000),
    "t10k-images-idx3-ubyte.gz": ("bef4ecab320f06d8554ea6380940ec79", 10000),
    "t10k-labels-idx1-ubyte.gz": ("bb300cfdad3c16e7a12a480ee83cd310", 10000),
}

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

_HOW_TO_GET = (
    "Get the four IDX gzip files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
    "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) in one of these ways: "
    "pass data_dir=/path (CLI: --data-dir), install Debian's package dataset-fashion-mnist "
    "(files in /usr/share/datasets/fashion-mnist), or download them with download=True "
    "(CLI: --download), which verifies the official MD5 sums."
)


class DatasetNotFoundError(QStoreError, FileNotFoundError):
    """The data set files are missing or corrupt; the message says how to get them."""


def search_path() -> list[Path]:
    """Directories searched, in order, when no ``data_dir`` is given."""
    out: list[Path] = []
    env = os.environ.get("QSTORE_DATA_DIR")
    if env:
        out += [Path(env) / "fashion-mnist", Path(env)]
    home = Path.home()
    out += [
        home / ".keras" / "datasets" / "fashion-mnist",
        home / ".cache" / "qstore" / "datasets" / "fashion-mnist",
        Path("/usr/share/datasets/fashion-mnist"),
    ]
    return out


def _complete(d: Path) -> bool:
    return all((d / name).is_file() for name in FASHION_MNIST_FILES)


def find_fashion_mnist(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The directory holding the four files, or :class:`DatasetNotFoundError`."""
    if data_dir is not None:
        d = Path(data_dir).expanduser()
        if not d.is_dir():
            raise DatasetNotFoundError(
                f"Fashion-MNIST directory {str(d)!r} does not exist. " + _HOW_TO_GET
            )
        missing = [n for n in FASHION_MNIST_FILES if not (d / n).is_file()]
        if missing:
            raise DatasetNotFoundError(
                f"Fashion-MNIST directory {str(d)!r} lacks {missing}. " + _HOW_TO_GET
            )
        return d
    for d in search_path():
        if _complete(d):
            return d
    searched = ", ".join(str(p) for p in search_path())
    raise DatasetNotFoundError(f"Fashion-MNIST not found (searched {searched}). " + _HOW_TO_GET)


def md5sum(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_idx(path: str | os.PathLike[str]) -> npt.NDArray[np.uint8]:
    """Read one IDX file (gzip or plain) of unsigned bytes; validates the header and size."""
    p = Path(path)
    opener = gzip.open if p.suffix == ".gz" else open
    try:
        with opener(p, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DatasetNotFoundError(
            f"Cannot read {str(p)!r} ({exc}); the file is corrupt. " + _HOW_TO_GET
        ) from exc
    if len(raw) < 4:
        raise DatasetNotFoundError(f"{str(p)!r} is too short to be an IDX file. " + _HOW_TO_GET)
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08 or not 1 <= ndim <= 4:
        raise DatasetNotFoundError(
            f"{str(p)!r} has an invalid IDX header (magic {raw[:4].hex()}); expected unsigned-byte "
            "data (0x0000080N). " + _HOW_TO_GET
        )
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    body = raw[4 + 4 * ndim :]
    expected = int(np.prod(dims))
    if len(body) != expected:
        raise DatasetNotFoundError(
            f"{str(p)!r} holds {len(body)} bytes of data but its header announces {expected}; the "
            "file is truncated or corrupt. " + _HOW_TO_GET
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def load_fashion_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    verify: bool = False,
) -> tuple[
    tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]],
    tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]],
]:
    """``(x_train [60000, 28, 28], y_train), (x_test [10000, 28, 28], y_test)`` as ``uint8``.

    Args:
        data_dir: directory with the four files; ``None`` searches :func:`search_path`.
        download: fetch the official files into the cache when not found (verified by MD5).
        verify: check the MD5 sums of local files too (reads 31 MB).
    """
    try:
        d = find_fashion_mnist(data_dir)
    except DatasetNotFoundError:
        if not download:
            raise
        d = download_fashion_mnist(Path(data_dir) if data_dir is not None else None)
    if verify:
        for name, (md5, _) in FASHION_MNIST_FILES.items():
            got = md5sum(d / name)
            if got != md5:
                raise DatasetNotFoundError(
                    f"{str(d / name)!r} has MD5 {got}, expected {md5}: the file is corrupt or a "
                    "different version. " + _HOW_TO_GET
                )
    arrays = {}
    for name, (_, count) in FASHION_MNIST_FILES.items():
        a = read_idx(d / name)
        if a.shape[0] != count or ("images" in name and a.shape[1:] != (28, 28)):
            raise DatasetNotFoundError(
                f"{str(d / name)!r} has shape {a.shape}; Fashion-MNIST has {count} items"
                + (" of 28x28 pixels." if "images" in name else ".")
                + " "
                + _HOW_TO_GET
            )
        arrays[name] = a
    if int(arrays["train-labels-idx1-ubyte.gz"].max()) > 9:
        raise DatasetNotFoundError(
            "Labels outside 0..9: the label files are corrupt. " + _HOW_TO_GET
        )
    return (
        (arrays["train-images-idx3-ubyte.gz"], arrays["train-labels-idx1-ubyte.gz"]),
        (arrays["t10k-images-idx3-ubyte.gz"], arrays["t10k-labels-idx1-ubyte.gz"]),
    )


def download_fashion_mnist(
    target: Path | None = None, base_url: str | None = None, timeout: float = 60.0
) -> Path:
    """Download the four official files into ``target`` (default: the qstore cache), verify
    their MD5 sums and return the directory. Only called when the user asks for it.

    ``base_url`` defaults to ``$QSTORE_FASHION_MNIST_URL`` or else :data:`OFFICIAL_URL`.
    """
    d = target or Path.home() / ".cache" / "qstore" / "datasets" / "fashion-mnist"
    if base_url is None:
        base_url = os.environ.get("QSTORE_FASHION_MNIST_URL") or OFFICIAL_URL
    d.mkdir(parents=True, exist_ok=True)
    if not base_url.endswith("/"):
        base_url += "/"
    for name, (md5, _) in FASHION_MNIST_FILES.items():
        dest = d / name
        if dest.is_file() and md5sum(dest) == md5:
            continue
        url = base_url + name
        log.info("downloading %s", url)
        fd, tmp = tempfile.mkstemp(dir=d, prefix=f".{name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                shutil.copyfileobj(resp, out)
            got = md5sum(Path(tmp))
            if got != md5:
                raise DatasetNotFoundError(
                    f"Downloaded {url} has MD5 {got}, expected {md5}; nothing was kept. Retry, or "
                    "fetch the files by hand. " + _HOW_TO_GET
                )
            os.replace(tmp, dest)
        except DatasetNotFoundError:
            raise
        except OSError as exc:
            raise DatasetNotFoundError(f"Downloading {url} failed: {exc}. " + _HOW_TO_GET) from exc
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return d
