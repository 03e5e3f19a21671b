"""The store API, the filter language and the embedded ``local`` store, against brute force."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import numpy as np
import pytest

import qstore.core as qc
from qstore.core.stores import FilterError, StoreInputError, StoreNotFoundError
from qstore.core.stores.filters import compile_filter, normalize_metadata


def random_states(rng: np.random.Generator, n: int, n_qubits: int) -> np.ndarray:
    x = rng.normal(size=(n, 2**n_qubits)) + 1j * rng.normal(size=(n, 2**n_qubits))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force(queries: np.ndarray, data: np.ndarray, ids: list[str], k: int) -> list[list[str]]:
    out = []
    for q in queries:
        f = [abs(np.vdot(q, d)) ** 2 for d in data]  # independent of the store's matmul
        out.append([ids[i] for i in sorted(range(len(ids)), key=lambda i: (-f[i], ids[i]))[:k]])
    return out


@pytest.fixture
def store(tmp_path):
    s = qc.stores.open("local", path=tmp_path / "states.db")
    yield s
    s.close()


# -- filter language -------------------------------------------------------------------------
RECORDS = [
    {"genre": "drama", "year": 2020, "tags": ["a", "b"], "ok": True},
    {"genre": "comedy", "year": 2019.5, "tags": ["c"], "ok": False},
    {"genre": "drama", "year": 2021},
    {"year": 1},
    {"ok": 1.0},
]
CASES = [
    ({"genre": "drama"}, [0, 2]),
    ({"genre": {"$ne": "drama"}}, [1, 3, 4]),  # absent fields match $ne
    ({"year": {"$gt": 2019.5}}, [0, 2]),
    ({"year": {"$gte": 2019.5, "$lt": 2021}}, [0, 1]),
    ({"year": {"$lte": 1}}, [3]),
    ({"tags": "b"}, [0]),  # a list field matches $eq when any element does
    ({"tags": {"$in": ["c", "x"]}}, [1]),
    ({"tags": {"$nin": ["a"]}}, [1, 2, 3, 4]),  # ... and $nin only when none does
    ({"tags": {"$ne": "c"}}, [0, 2, 3, 4]),
    ({"ok": True}, [0]),  # booleans are not numbers
    ({"ok": 1}, [4]),
    ({"tags": {"$exists": False}}, [2, 3, 4]),
    ({"$or": [{"genre": "comedy"}, {"year": {"$lt": 10}}]}, [1, 3]),
    ({"$and": [{"genre": "drama"}, {"year": 2021}]}, [2]),
    ({"genre": "drama", "ok": True}, [0]),
    ({}, [0, 1, 2, 3, 4]),
]


@pytest.mark.parametrize(("f", "expected"), CASES)
def test_filter_semantics(f, expected):
    match = compile_filter(f)
    assert [i for i, md in enumerate(RECORDS) if match(md)] == expected


@pytest.mark.parametrize(
    ("f", "needle"),
    [
        ({"a": {"$regex": "x"}}, "$regex"),
        ({"$not": {"a": 1}}, "$not"),
        ({"a": {"$gt": "b"}}, "numbers only"),
        ({"a": {"$in": []}}, "non-empty list"),
        ({"a": {"$exists": 1}}, "true or false"),
        ({"a": None}, "string, number or boolean"),
        ({"$or": []}, "non-empty list"),
        (["a"], "must be a dict"),
    ],
)
def test_bad_filters_are_refused_with_the_fix(f, needle):
    with pytest.raises(FilterError, match=None) as info:
        compile_filter(f)
    assert needle in str(info.value)


def test_metadata_the_language_cannot_hold_is_refused():
    assert normalize_metadata({"n": np.float32(0.5), "b": np.bool_(True)}) == {"n": 0.5, "b": True}
    for bad in (
        {"a": None},
        {"a": {"nested": 1}},
        {"a": [1, 2]},
        {"a": float("nan")},
        {"$a": 1},
        {"a": "x" * 50_000},
    ):
        with pytest.raises(StoreInputError):
            normalize_metadata(bad)


# -- local store -----------------------------------------------------------------------------
@pytest.mark.parametrize("precision", ["single", "double"])
def test_query_equals_brute_force_fidelity(tmp_path, precision):
    rng = np.random.default_rng(1)
    data = random_states(rng, 300, 6)
    ids = [f"s{i:03d}" for i in range(300)]
    store = qc.stores.open("local", path=tmp_path / "s.db", precision=precision)
    store.upsert(ids, data)
    queries = np.concatenate([random_states(rng, 4, 6), data[:3] * np.exp(0.7j)])
    got = store.query_many(queries, top_k=7)
    assert [[m.id for m in r] for r in got] == brute_force(queries, data, ids, 7)
    for q, r in zip(queries, got, strict=True):
        for m in r:
            assert m.fidelity == pytest.approx(
                abs(np.vdot(q, data[ids.index(m.id)])) ** 2, abs=1e-12
            )
    assert store.query(queries[0], top_k=7) == got[0]
    store.close()


def test_near_ties_are_ranked_exactly_in_single_precision(store):
    # Fidelities 1e-9 apart: complex64 cannot tell them apart, the re-scoring can.
    base = np.zeros(8, complex)
    base[0] = 1
    states = []
    for j in range(20):
        t = 0.3 + j * 1e-9
        s = base.copy()
        s[0], s[1] = np.cos(t), np.sin(t)
        states.append(s)
    ids = [f"t{j:02d}" for j in range(20)]
    store.upsert(ids, states)
    assert [m.id for m in store.query(base, top_k=5)] == ids[:5]  # F = cos(t)**2


def test_filters_namespaces_fetch_delete_count(store):
    rng = np.random.default_rng(2)
    data = random_states(rng, 40, 3)
    ids = [f"id{i}" for i in range(40)]
    md = [{"parity": "even" if i % 2 == 0 else "odd", "i": i} for i in range(40)]
    assert store.upsert(ids, data, md, namespace="a") == 40
    store.upsert(ids[:5], data[:5], namespace="b")
    assert store.count() == 45 and store.count("a") == 40 and store.count("zzz") == 0
    assert store.namespaces() == ["a", "b"]
    keep = [i for i in range(40) if i % 2 == 1 and i >= 20]
    got = store.query(data[0], top_k=40, filter={"parity": "odd", "i": {"$gte": 20}}, namespace="a")
    assert sorted(m.id for m in got) == sorted(ids[i] for i in keep)
    assert got == [m for m in got if m.metadata["parity"] == "odd"]
    rec = store.fetch(["id3", "missing", "id1"], namespace="a")
    assert list(rec) == ["id3", "id1"]
    np.testing.assert_array_equal(rec["id3"].state, data[3])  # exact amplitudes back
    assert rec["id3"].metadata == {"parity": "odd", "i": 3}
    store.delete(filter={"parity": "even"}, namespace="a")
    assert store.count("a") == 20
    store.delete(ids=["id1", "id3", "nope"], namespace="a")
    assert store.count("a") == 18 and "id1" not in store.fetch(["id1"], namespace="a")
    store.delete(delete_all=True, namespace="b")
    assert store.namespaces() == ["a"]
    # overwrite: same id, new state and metadata
    store.upsert(["id5"], data[:1], [{"new": True}], namespace="a")
    assert store.count("a") == 18
    best = store.query(data[0], top_k=1, namespace="a")[0]
    assert (best.id, best.metadata) == ("id5", {"new": True})
    assert best.fidelity == pytest.approx(1.0, abs=1e-12)


def test_reopening_keeps_everything(tmp_path):
    rng = np.random.default_rng(3)
    data = random_states(rng, 30, 4)
    ids = [str(i) for i in range(30)]
    with qc.stores.open("local", path=tmp_path / "s.db") as s:
        s.upsert(ids, data, [{"i": i} for i in range(30)], namespace="n")
        before = s.query_many(data[:4], top_k=5, namespace="n")
    with qc.QuantumStateStore("local", path=tmp_path / "s.db") as s:
        assert s.n_qubits == 4 and s.count("n") == 30
        assert s.query_many(data[:4], top_k=5, namespace="n") == before


def test_a_second_connection_sees_committed_writes(tmp_path):
    a = qc.stores.open("local", path=tmp_path / "s.db")
    b = qc.stores.open("local", path=tmp_path / "s.db")
    a.upsert(["x"], [[1, 0]])
    assert b.count() == 1 and b.query([1, 0], top_k=1)[0].id == "x"
    b.delete(ids=["x"])
    assert a.count() == 0


def test_circuits_with_bindings_are_simulated(store):
    c = (
        qc.UnifiedCircuit(2)
        .add_gate("RY", targets=[0], parameters="t")
        .add_gate("CNOT", targets=[0, 1])
    )
    thetas = np.array([[0.0], [np.pi / 2], [np.pi]])
    store.upsert(["0", "half", "pi"], c, bindings=thetas)
    # RY(t) then CNOT: cos(t/2)|00> + sin(t/2)|11>
    expected = np.array([np.cos(0.3), 0, 0, np.sin(0.3)])
    got = store.query(expected, top_k=3)
    ref = {
        k: abs(np.cos(0.3 - t / 2)) ** 2
        for k, t in zip(["0", "half", "pi"], thetas[:, 0], strict=True)
    }
    assert [m.id for m in got] == sorted(ref, key=lambda k: -ref[k])
    assert all(m.fidelity == pytest.approx(ref[m.id], abs=1e-12) for m in got)


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda s: s.upsert(["a"], [[1, 0, 0]]), "2**n"),
        (lambda s: s.upsert(["a"], [[1, 1]]), "normalise"),
        (lambda s: s.upsert(["a"], [[np.nan, 0]]), "NaN"),
        (
            lambda s: s.upsert(["a"], [[1, 0, 0, 0]]),
            "holds 1-qubit states",
        ),  # the store holds 1 qubit
        (lambda s: s.upsert(["a" * 513], [[1, 0]]), "1 to 512"),
        (lambda s: s.upsert("a", [[1, 0]]), "wrap a single id"),
        (lambda s: s.upsert(["a", "a"], [[1, 0], [0, 1]]), "twice"),
        (lambda s: s.upsert(["a", "b"], [[1, 0]]), "one id per state"),
        (lambda s: s.upsert(["a"], [[1, 0]], [{"x": None}]), "leave the key out"),
        (lambda s: s.query([1, 0], filter={"x": {"$near": 1}}), "$near"),
        (lambda s: s.query([1, 0], top_k=0), "top_k"),
        (lambda s: s.delete(), "exactly one"),
    ],
)
def test_bad_input_raises_and_touches_nothing(store, call, needle):
    store.upsert(["keep"], [[0, 1]], [{"v": 1}])
    with pytest.raises(StoreInputError) as info:
        call(store)
    assert needle in str(info.value)
    assert store.count() == 1 and store.fetch(["keep"])["keep"].metadata == {"v": 1}


def test_async_forms_give_the_same_answers(store):
    rng = np.random.default_rng(4)
    data = random_states(rng, 20, 3)
    ids = [f"a{i}" for i in range(20)]

    async def main():
        await store.aio.upsert(ids, data)
        one, many, n = await asyncio.gather(
            store.aio.query(data[2], top_k=3),
            store.aio.query_many(data[:2], top_k=2),
            store.aio.count(),
        )
        return one, many, n

    async def cleanup():
        await store.aio.delete(ids=["a0"])
        return await store.aio.fetch(["a0", "a1"]), await store.aio.namespaces()

    one, many, n = asyncio.run(main())
    assert one == store.query(data[2], top_k=3) and one[0].id == "a2"
    assert many == store.query_many(data[:2], top_k=2) and n == 20
    fetched, spaces = asyncio.run(cleanup())
    assert list(fetched) == ["a1"] and spaces == [""]


def test_registry_and_cli(capsys):
    from qstore.core import cli

    assert "local" in qc.stores.available()
    with pytest.raises(StoreNotFoundError, match="Installed stores"):
        qc.stores.open("nosuchstore")

    class Mem(qc.stores.LocalStateStore):
        name = "mem"

        def __init__(self) -> None:
            super().__init__(":memory:")

    qc.stores.register("mem", Mem)
    try:
        assert qc.stores.open("mem").name == "mem"
        assert cli.main(["stores"]) == 0
        out = capsys.readouterr().out
        assert "local" in out and "qstore-core" in out and "mem" in out
    finally:
        qc.stores.unregister("mem")


def test_import_is_standard_library_and_numpy_only():
    code = (
        "import sys, qstore.core.stores, qstore.core.stores.local; "
        "bad = [m for m in ('pinecone', 'httpx', 'starlette', 'uvicorn', 'requests', 'urllib3') "
        "if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
