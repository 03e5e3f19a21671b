"""State stores: the ``local`` store against FAISS ``IndexFlatIP`` and NumPy brute force.

100,000 random states of 10 qubits; queries are stored states with noise and a random global
phase (a retrieval workload: each query has one near-duplicate, the rest of its top 10 is
ordinary neighbours). Measured in one run: ingestion rate, top-10 latency for one query and for
a batch of 64, and recall@10 against the true fidelity top-10 (complex128 brute force).
FAISS gets the same canonical-phase ``[Re, Im]`` float32 vectors that the ``pinecone`` store
sends to Pinecone.

    python benchmarks/stores.py [--n 100000] [--qubits 10] [--queries 64] [--out stores.json]

Needs faiss-cpu (in the ``bench`` hatch environment); without it FAISS is skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import qstore.core as qc
from qstore.core.stores import states as st


def timed(fn: Callable[[], Any], reps: int) -> tuple[float, Any]:
    """Median seconds of ``reps`` calls after one warm-up, and the last result."""
    out = fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def recall(found: list[list[str]], truth: list[list[str]]) -> float:
    hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth, strict=True))
    return hits / sum(len(t) for t in truth)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--qubits", type=int, default=10)
    ap.add_argument("--queries", type=int, default=64)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--batch", type=int, default=1000, help="states per upsert")
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    d = 2**args.qubits
    data = np.empty((args.n, d), dtype=np.complex128)
    for s in range(0, args.n, 10_000):
        m = min(10_000, args.n - s)
        x = rng.normal(size=(m, d)) + 1j * rng.normal(size=(m, d))
        data[s : s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    ids = [f"s{i:06d}" for i in range(args.n)]
    pick = rng.choice(args.n, args.queries, replace=False)
    noise = rng.normal(size=(args.queries, d)) + 1j * rng.normal(size=(args.queries, d))
    queries = data[pick] + 0.03 * noise
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    queries *= np.exp(1j * rng.uniform(0, 2 * np.pi, size=(args.queries, 1)))
    res: dict[str, Any] = {
        "n": args.n,
        "qubits": args.qubits,
        "queries": args.queries,
        "k": args.k,
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "numpy": np.__version__,
    }

    # Truth: complex128 brute force, ties by id.
    f = np.abs(np.conj(queries) @ data.T) ** 2
    truth = [
        [
            ids[i]
            for i in sorted(np.argsort(-row)[: args.k + 5], key=lambda i: (-row[i], ids[i]))[
                : args.k
            ]
        ]
        for row in f
    ]
    del f

    def numpy_brute(q: np.ndarray) -> list[list[str]]:
        fid = np.abs(np.conj(q) @ data.T) ** 2
        part = np.argpartition(-fid, args.k, axis=1)[:, : args.k]
        return [
            [ids[i] for i in sorted(p, key=lambda i: -row[i])]
            for p, row in zip(part, fid, strict=True)
        ]

    t1, _ = timed(lambda: numpy_brute(queries[:1]), 5)
    tb, nb = timed(lambda: numpy_brute(queries), 3)
    res["numpy"] = {"single_ms": t1 * 1e3, "batch_ms": tb * 1e3, "recall": recall(nb, truth)}
    print(
        f"numpy complex128 brute force: single {t1 * 1e3:.1f} ms, "
        f"batch of {args.queries} {tb * 1e3:.1f} ms"
    )

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "states.db")
        for sync in ("full", "normal"):
            store = qc.stores.open("local", path=path + sync, synchronous=sync)
            t = time.perf_counter()
            for s in range(0, args.n, args.batch):
                store.upsert(ids[s : s + args.batch], data[s : s + args.batch])
            rate = args.n / (time.perf_counter() - t)
            res[f"ingest_per_s_{sync}"] = rate
            print(f"local ingestion (synchronous={sync}): {rate:,.0f} states/s")
            if sync == "normal":
                break
            store.close()
            os.remove(path + sync)
        t1, _ = timed(lambda: store.query(queries[0], top_k=args.k), 5)
        tb, got = timed(lambda: store.query_many(queries, top_k=args.k), 3)
        ours = [[m.id for m in r] for r in got]
        res["local"] = {
            "single_ms": t1 * 1e3,
            "batch_ms": tb * 1e3,
            "recall": recall(ours, truth),
            "exact_order": ours == truth,
        }
        print(
            f"local store: single {t1 * 1e3:.1f} ms, batch {tb * 1e3:.1f} ms, recall@{args.k} "
            f"{res['local']['recall']:.3f}, same order as brute force: {ours == truth}"
        )
        store.close()

    try:
        import faiss
    except ImportError:
        print("faiss not installed: skipped")
    else:
        vecs = st.to_real(data, np.float32)
        qv = st.to_real(queries, np.float32)
        index = faiss.IndexFlatIP(vecs.shape[1])
        t = time.perf_counter()
        index.add(vecs)
        res["faiss_add_per_s"] = args.n / (time.perf_counter() - t)
        t1, _ = timed(lambda: index.search(qv[:1], args.k), 5)
        tb, (_, idx) = timed(lambda: index.search(qv, args.k), 3)
        found = [[ids[i] for i in row] for row in idx]
        res["faiss"] = {
            "single_ms": t1 * 1e3,
            "batch_ms": tb * 1e3,
            "recall": recall(found, truth),
            "version": faiss.__version__,
        }
        print(
            f"faiss IndexFlatIP: single {t1 * 1e3:.1f} ms, batch {tb * 1e3:.1f} ms, "
            f"recall@{args.k} "
            f"{res['faiss']['recall']:.3f}"
        )
        res["ratio_single"] = res["local"]["single_ms"] / res["faiss"]["single_ms"]
        res["ratio_batch"] = res["local"]["batch_ms"] / res["faiss"]["batch_ms"]
        print(
            f"local / faiss latency: single {res['ratio_single']:.2f}x, "
            f"batch {res['ratio_batch']:.2f}x"
        )
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(res, fh, indent=2)


if __name__ == "__main__":
    main()
