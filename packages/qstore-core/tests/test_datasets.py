"""Fashion-MNIST loading: real files, corrupt files, search path and verified download."""

from __future__ import annotations

import functools
import gzip
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from qstore.core.datasets import (
    FASHION_MNIST_FILES,
    DatasetNotFoundError,
    download_fashion_mnist,
    find_fashion_mnist,
    load_fashion_mnist,
    read_idx,
)

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "datasets" / "fashion-mnist"
needs_data = pytest.mark.skipif(
    not all((SHARED / n).is_file() for n in FASHION_MNIST_FILES),
    reason=f"Fashion-MNIST files not present in {SHARED}",
)


@needs_data
def test_load_real_files_with_official_checksums() -> None:
    (xtr, ytr), (xte, yte) = load_fashion_mnist(SHARED, verify=True)
    assert xtr.shape == (60000, 28, 28) and xte.shape == (10000, 28, 28)
    assert xtr.dtype == np.uint8 and ytr.dtype == np.uint8
    # the published class balance: 6,000 training and 1,000 test images per class
    assert np.bincount(ytr).tolist() == [6000] * 10
    assert np.bincount(yte).tolist() == [1000] * 10
    assert 0 < xtr.mean() < 255


def _write_idx(path: Path, data: np.ndarray) -> None:
    header = bytes([0, 0, 8, data.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in data.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + data.astype(np.uint8).tobytes())


def test_read_idx_round_trip_and_truncation(tmp_path: Path) -> None:
    data = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a.gz", data)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), data)
    raw = gzip.decompress((tmp_path / "a.gz").read_bytes())
    with gzip.open(tmp_path / "b.gz", "wb") as fh:
        fh.write(raw[:-3])
    with pytest.raises(DatasetNotFoundError, match="truncated or corrupt"):
        read_idx(tmp_path / "b.gz")
    (tmp_path / "c.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DatasetNotFoundError, match="corrupt"):
        read_idx(tmp_path / "c.gz")


def test_missing_directory_and_files_say_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"does not exist.*dataset-fashion-mnist"):
        find_fashion_mnist(tmp_path / "nope")
    with pytest.raises(DatasetNotFoundError, match="lacks"):
        find_fashion_mnist(tmp_path)


def test_search_path_uses_qstore_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "fashion-mnist"
    d.mkdir()
    for name in FASHION_MNIST_FILES:
        (d / name).write_bytes(b"")
    monkeypatch.setenv("QSTORE_DATA_DIR", str(tmp_path))
    assert find_fashion_mnist() == d


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", root
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@needs_data
def test_download_verifies_md5_against_a_local_server(
    file_server: tuple[str, Path], tmp_path: Path
) -> None:
    url, root = file_server
    for name in FASHION_MNIST_FILES:
        shutil.copy(SHARED / name, root / name)
    target = tmp_path / "cache"
    got = download_fashion_mnist(target, base_url=url)
    assert got == target
    (xtr, _), (xte, yte) = load_fashion_mnist(target, verify=True)
    assert xtr.shape[0] == 60000 and xte.shape[0] == 10000 and yte.shape == (10000,)


def test_download_rejects_a_corrupt_file_and_keeps_nothing(
    file_server: tuple[str, Path], tmp_path: Path
) -> None:
    url, root = file_server
    for name in FASHION_MNIST_FILES:
        (root / name).write_bytes(b"garbage")
    target = tmp_path / "cache"
    with pytest.raises(DatasetNotFoundError, match="MD5"):
        download_fashion_mnist(target, base_url=url)
    assert list(target.iterdir()) == []


def test_download_reports_unreachable_server(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="failed"):
        download_fashion_mnist(tmp_path, base_url="http://127.0.0.1:9/", timeout=2)


@needs_data
def test_demo_download_flag_fetches_from_the_configured_mirror(
    file_server: tuple[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from qstore.core.cli import main

    url, root = file_server
    for name in FASHION_MNIST_FILES:
        shutil.copy(SHARED / name, root / name)
    monkeypatch.setenv("QSTORE_FASHION_MNIST_URL", url)
    target = tmp_path / "fetched"
    argv = ["demo", "fashion-mnist", "--framework", "torch", "--data-dir", str(target)]
    argv += ["--epochs", "1", "--n-train", "200", "--n-test", "100", "--no-save", "--no-progress"]
    assert main(argv) == 1  # without --download, nothing is fetched
    assert "--download" in capsys.readouterr().err and not target.exists()
    assert main([*argv, "--download"]) == 0
    assert "Test accuracy:" in capsys.readouterr().out
    assert sorted(p.name for p in target.iterdir()) == sorted(FASHION_MNIST_FILES)
