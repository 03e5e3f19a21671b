"""``local`` and ``pinecone`` give the same top-k on the same data (the Pinecone side through
the real SDK against qstore-pinecone's emulator), and both equal brute-force fidelity."""

from __future__ import annotations

import numpy as np
import pytest

import qstore.core as qc

pytest.importorskip("qstore.pinecone")
from qstore.pinecone.testing import PineconeEmulator


def normalise(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def random_states(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    return normalise(rng.normal(size=(n, dim)) + 1j * rng.normal(size=(n, dim)))


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    rng = np.random.default_rng(7)
    dim = 2**5
    centers = random_states(rng, 12, dim)
    clustered = normalise(np.repeat(centers, 10, axis=0) + 0.2 * random_states(rng, 120, dim))
    clustered *= np.exp(1j * rng.uniform(0, 2 * np.pi, size=(120, 1)))  # arbitrary global phases
    uniform = random_states(rng, 150, dim)
    data = {"clustered": clustered, "uniform": uniform}
    emu = PineconeEmulator()
    with emu.serve() as url:
        remote = qc.stores.open(
            "pinecone", index="states", host=url, api_key="k", n_qubits=5, create=True
        )
        local = qc.stores.open("local", path=tmp_path_factory.mktemp("db") / "s.db")
        for ns, x in data.items():
            ids = [f"{ns[0]}{i:03d}" for i in range(len(x))]
            md = [
                {"group": i // 10, "even": i % 2 == 0, "tags": [f"t{i % 3}"]} for i in range(len(x))
            ]
            assert remote.upsert(ids, x, md, namespace=ns) == local.upsert(ids, x, md, namespace=ns)
        yield local, remote, data, emu, rng
        remote.close()
        local.close()


def ranked(results):
    return [[m.id for m in r] for r in results]


def brute(queries, x, prefix, k, keep=None):
    out = []
    for q in queries:
        f = {
            f"{prefix}{i:03d}": abs(np.vdot(q, s)) ** 2
            for i, s in enumerate(x)
            if keep is None or keep(i)
        }
        out.append(sorted(f, key=lambda i: (-f[i], i))[:k])
    return out


@pytest.mark.parametrize("top_k", [1, 5, 12])
def test_same_top_k_on_clustered_states(stores, top_k):
    local, remote, data, emu, rng = stores
    x = data["clustered"]
    queries = normalise(x[::17] + 0.05 * random_states(rng, len(x[::17]), x.shape[1]))
    queries *= np.exp(0.9j)
    emu.requests.clear()
    a = remote.query_many(queries, top_k=top_k, namespace="clustered")
    b = local.query_many(queries, top_k=top_k, namespace="clustered")
    assert ranked(a) == ranked(b) == brute(queries, x, "c", top_k)
    for ra, rb in zip(a, b, strict=True):
        for ma, mb in zip(ra, rb, strict=True):
            assert ma.fidelity == pytest.approx(mb.fidelity, abs=1e-6)  # float32 in Pinecone
            assert ma.metadata == mb.metadata
    # proven from the candidates alone: no full scan of the namespace was needed
    assert not any(p.endswith("/vectors/list") for _, p in emu.requests)


@pytest.mark.parametrize("top_k", [3, 10])
def test_same_top_k_on_unstructured_states_with_filters(stores, top_k):
    local, remote, data, _, rng = stores
    x = data["uniform"]
    queries = random_states(rng, 4, x.shape[1])
    flt = {"$or": [{"even": True}, {"tags": {"$in": ["t1"]}}], "group": {"$lt": 12}}
    a = remote.query_many(queries, top_k=top_k, filter=flt, namespace="uniform")
    b = local.query_many(queries, top_k=top_k, filter=flt, namespace="uniform")

    def keep(i):
        return (i % 2 == 0 or i % 3 == 1) and i // 10 < 12

    assert ranked(a) == ranked(b) == brute(queries, x, "u", top_k, keep)


def test_same_fetch_count_and_namespaces(stores):
    local, remote, _, _, _ = stores
    assert remote.namespaces() == local.namespaces() == ["clustered", "uniform"]
    assert remote.count() == local.count() == 270
    ids = ["c000", "u149", "missing"]
    ra, rb = remote.fetch(ids, namespace="clustered"), local.fetch(ids, namespace="clustered")
    assert list(ra) == list(rb) == ["c000"]
    assert abs(np.vdot(ra["c000"].state, rb["c000"].state)) ** 2 == pytest.approx(1, abs=1e-6)
    assert ra["c000"].metadata == rb["c000"].metadata
