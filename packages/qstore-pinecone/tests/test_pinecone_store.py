"""qstore-pinecone against its emulator, driven by the real, unchanged ``pinecone`` SDK."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from pinecone import Pinecone
from pinecone.errors.exceptions import ApiError, ConflictError, NotFoundError, UnauthorizedError

import qstore.core as qc
from qstore.core.stores import StoreInputError, StoreUnavailableError
from qstore.pinecone import PineconeStateStore, dimension_for
from qstore.pinecone.testing import PineconeEmulator

KEY = "test-key"


def random_states(rng: np.random.Generator, n: int, n_qubits: int) -> np.ndarray:
    x = rng.normal(size=(n, 2**n_qubits)) + 1j * rng.normal(size=(n, 2**n_qubits))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def server():
    emu = PineconeEmulator(api_key=KEY)
    with emu.serve() as url:
        yield emu, url


@pytest.fixture
def emu(server):
    emu, _ = server
    emu.clear_faults()
    emu.indexes.clear()
    emu.requests.clear()
    return emu


@pytest.fixture
def pc(server, emu):
    client = Pinecone(api_key=KEY, host=server[1])
    yield client
    client.close()


def open_store(url: str, name: str = "states", n_qubits: int = 3, **kw) -> PineconeStateStore:
    kw.setdefault("backoff", 0.01)
    return qc.stores.open(
        "pinecone", index=name, host=url, api_key=KEY, n_qubits=n_qubits, create=True, **kw
    )


# -- the SDK's own calls against the emulator -------------------------------------------------
def test_sdk_control_plane(pc):
    model = pc.indexes.create(
        name="vecs",
        dimension=8,
        metric="cosine",
        spec={"serverless": {"cloud": "aws", "region": "us-east-1"}},
    )
    assert (model.name, model.dimension, model.metric, model.status.ready) == (
        "vecs",
        8,
        "cosine",
        True,
    )
    assert model.host.startswith("http://127.0.0.1:") and model.host.endswith("/data/vecs")
    assert [i.name for i in pc.indexes.list()] == ["vecs"] and pc.has_index("vecs")
    with pytest.raises(ConflictError):
        pc.indexes.create(
            name="vecs",
            dimension=8,
            metric="cosine",
            spec={"serverless": {"cloud": "aws", "region": "us-east-1"}},
        )
    with pytest.raises(NotFoundError):
        pc.indexes.describe("missing")
    with pytest.raises(ApiError):
        pc.indexes.create(
            name="wide",
            dimension=20_001,
            metric="cosine",
            spec={"serverless": {"cloud": "aws", "region": "us-east-1"}},
        )
    pc.indexes.delete("vecs")
    assert not pc.has_index("vecs")


def test_sdk_data_plane(pc, server):
    pc.indexes.create(
        name="vecs",
        dimension=3,
        metric="cosine",
        spec={"serverless": {"cloud": "aws", "region": "us-east-1"}},
    )
    idx = pc.index(host=pc.indexes.describe("vecs").host)
    res = idx.upsert(
        vectors=[
            ("a", [1.0, 0, 0], {"tags": ["x", "y"], "n": 1}),
            ("b", [0.6, 0.8, 0], {"tags": ["z"], "n": 2}),
            ("c", [0, 0, 1.0]),
        ],
        namespace="ns",
    )
    assert res.upserted_count == 3
    q = idx.query(vector=[1.0, 0.1, 0], top_k=3, namespace="ns", include_metadata=True)
    assert [m.id for m in q.matches] == ["a", "b", "c"]
    assert q.matches[0].score == pytest.approx(1 / np.sqrt(1.01), abs=1e-6)
    q = idx.query(vector=[1.0, 0.1, 0], top_k=3, namespace="ns", filter={"tags": {"$in": ["z"]}})
    assert [m.id for m in q.matches] == ["b"]
    q = idx.query(id="c", top_k=1, namespace="ns", include_values=True)
    assert q.matches[0].id == "c" and q.matches[0].values == [0.0, 0.0, 1.0]
    fetched = idx.fetch(ids=["a", "nope"], namespace="ns").vectors
    assert list(fetched) == ["a"] and fetched["a"].metadata == {"tags": ["x", "y"], "n": 1}
    idx.update(id="a", set_metadata={"n": 5}, namespace="ns")
    assert idx.fetch(ids=["a"], namespace="ns").vectors["a"].metadata["n"] == 5
    assert [v.id for page in idx.list(namespace="ns") for v in page.vectors] == ["a", "b", "c"]
    stats = idx.describe_index_stats()
    assert (stats.dimension, stats.total_vector_count, stats.namespaces["ns"].vector_count) == (
        3,
        3,
        3,
    )
    idx.delete(filter={"tags": "z"}, namespace="ns")
    idx.delete(ids=["c"], namespace="ns")
    assert list(idx.fetch(ids=["a", "b", "c"], namespace="ns").vectors) == ["a"]
    with pytest.raises(ApiError, match="dimension"):
        idx.upsert(vectors=[("d", [1.0, 0])], namespace="ns")
    with pytest.raises(ApiError, match="non-zero"):
        idx.upsert(vectors=[("d", [0.0, 0, 0])], namespace="ns")
    with pytest.raises(ApiError, match="1000"):
        idx.upsert(vectors=[(str(i), [1.0, 0, 0]) for i in range(1001)], namespace="ns")
    with pytest.raises(ApiError, match="filter"):
        idx.query(vector=[1.0, 0, 0], top_k=1, filter={"n": {"$near": 1}})
    with pytest.raises(UnauthorizedError):
        Pinecone(api_key="wrong", host=server[1]).index(host=idx.host).describe_index_stats()


def test_emulator_in_process_asgi_speaks_the_error_shapes(emu):
    async def run():
        transport = httpx.ASGITransport(app=emu.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://pc.test") as c:
            h = {"Api-Key": KEY}
            missing = await c.get("/indexes/nope", headers=h)
            r = await c.post(
                "/indexes",
                headers=h,
                json={
                    "name": "a",
                    "dimension": 4,
                    "metric": "cosine",
                    "spec": {"serverless": {"cloud": "aws", "region": "x"}},
                },
            )
            bad = await c.post("/data/a/query", headers=h, json={"topK": 0, "vector": [1, 0, 0, 0]})
            return missing, r, bad

    import asyncio

    missing, created, bad = asyncio.run(run())
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    assert created.status_code == 201 and created.json()["host"] == "http://pc.test/data/a"
    assert bad.status_code == 400 and bad.json()["code"] == 3 and "topK" in bad.json()["message"]


# -- the store -------------------------------------------------------------------------------
@pytest.mark.slow
def test_batches_stay_within_the_request_limits(server, emu):
    rng = np.random.default_rng(0)
    data = random_states(rng, 120, 10)  # 2,048 floats per record: ~40 records per 2 MB
    store = open_store(server[1], n_qubits=10)
    emu.requests.clear()
    assert store.upsert([f"s{i}" for i in range(120)], data) == 120
    upserts = [p for m, p in emu.requests if p.endswith("/vectors/upsert")]
    assert 3 <= len(upserts) <= 6  # several requests, each accepted under the 2 MB cap
    assert store.count() == 120
    got = store.fetch(["s7"])["s7"].state
    assert abs(np.vdot(got, data[7])) ** 2 == pytest.approx(1.0, abs=1e-6)  # canonical phase


def test_retries_on_429_and_5xx_lose_and_duplicate_nothing(server, emu):
    rng = np.random.default_rng(1)
    data = random_states(rng, 50, 3)
    ids = [f"r{i}" for i in range(50)]
    store = open_store(server[1])
    # More consecutive 429s than the SDK retries (3), so the store's own retries are needed;
    # then 503s answered after the write was applied: the retried batch must not double.
    emu.inject(status=429, times=6, paths=("/vectors/upsert",))
    emu.inject(status=503, times=2, apply=True, paths=("/vectors/upsert",))
    emu.inject(status=500, times=2, paths=("/query",))
    assert store.upsert(ids, data, [{"i": i} for i in range(50)]) == 50
    assert store.count() == 50
    assert sorted(store.fetch(ids)) == sorted(ids)
    assert store.query(data[3], top_k=1)[0].id == "r3"
    assert sum(p.endswith("/vectors/upsert") for _, p in emu.requests) >= 9


def test_slow_responses_are_retried_after_the_timeout(server, emu):
    rng = np.random.default_rng(2)
    data = random_states(rng, 5, 3)
    store = open_store(server[1], timeout=0.3)
    emu.inject(status=None, delay=0.8, times=1, paths=("/vectors/upsert",))
    assert store.upsert([f"t{i}" for i in range(5)], data) == 5
    assert store.count() == 5


def test_persistent_failure_raises_naming_the_cause(server, emu):
    store = open_store(server[1], max_retries=1)
    emu.inject(status=503, times=100, paths=("/vectors/upsert",))
    with pytest.raises(StoreUnavailableError, match="upsert failed 2 times"):
        store.upsert(["x"], [[1, 0, 0, 0, 0, 0, 0, 0]])
    emu.clear_faults()


def test_namespaces_filters_delete(server, emu):
    rng = np.random.default_rng(3)
    data = random_states(rng, 30, 3)
    ids = [f"n{i}" for i in range(30)]
    store = open_store(server[1])
    store.upsert(ids, data, [{"odd": i % 2 == 1} for i in range(30)], namespace="a")
    store.upsert(ids[:4], data[:4], namespace="b")
    assert store.namespaces() == ["a", "b"] and store.count() == 34 and store.count("a") == 30
    assert all(
        m.metadata["odd"]
        for m in store.query(data[0], top_k=30, filter={"odd": True}, namespace="a")
    )
    store.delete(filter={"odd": True}, namespace="a")
    assert store.count("a") == 15
    store.delete(delete_all=True, namespace="b")
    assert store.namespaces() == ["a"]
    with pytest.raises(StoreInputError, match="exactly one"):
        store.delete(namespace="a")


def test_width_limits_and_bad_input(server, emu):
    with pytest.raises(StoreInputError, match="local store"):
        dimension_for(14)
    with pytest.raises(StoreInputError, match="up to 13 qubits"):
        open_store(server[1], name="wide", n_qubits=14)
    store = open_store(server[1])
    with pytest.raises(StoreInputError, match="holds 3-qubit states"):
        store.upsert(["a"], [[1, 0]])
    with pytest.raises(StoreInputError, match="normalise"):
        store.upsert(["a"], [np.ones(8)])
    with pytest.raises(qc.stores.FilterError):
        store.query(np.eye(8)[0], filter={"a": {"$regex": "x"}})
    assert store.count() == 0


def test_async_forms(server, emu):
    import asyncio

    rng = np.random.default_rng(4)
    data = random_states(rng, 10, 3)
    store = open_store(server[1])

    async def main():
        await store.aio.upsert([f"a{i}" for i in range(10)], data)
        return await store.aio.query(data[4], top_k=2), await store.aio.count()

    best, n = asyncio.run(main())
    assert best[0].id == "a4" and n == 10


@pytest.mark.slow
def test_cli_runs_the_emulator_as_a_server(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "qstore.core", "pinecone", "emulator", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "Pinecone emulator on" in proc.stdout.readline()
        pc = Pinecone(api_key="any", host=f"http://127.0.0.1:{port}")
        for _ in range(100):
            try:
                assert list(pc.indexes.list()) == []
                break
            except Exception:  # not listening yet
                time.sleep(0.05)
        else:
            raise AssertionError("the emulator did not answer")
        model = pc.indexes.create(
            name="cli",
            dimension=4,
            metric="cosine",
            spec={"serverless": {"cloud": "aws", "region": "us-east-1"}},
        )
        assert json.loads(json.dumps(model.to_dict()))["name"] == "cli"
    finally:
        os.kill(proc.pid, signal.SIGINT)
        proc.wait(timeout=10)
