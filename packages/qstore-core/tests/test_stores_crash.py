"""Crash safety of the ``local`` store: a writer killed with SIGKILL at random moments.

A helper process imports Q-Store once and forks one writer per round (so the 20 rounds take
seconds, not 20 interpreter start-ups). The writer upserts batches and prints each batch once
``upsert`` has returned; the test kills it at a random moment, reopens the database and checks
that every acknowledged batch is there in full, that no batch is there in part, and that
SQLite's integrity check passes.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

import qstore.core as qc

BATCH = 50
ROUNDS = 20

HELPER = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    import qstore.core as qc
    from qstore.core.stores.local import LocalStateStore

    path = sys.argv[1]
    for line in sys.stdin:
        rnd = int(line)
        pid = os.fork()
        if pid == 0:
            rng = np.random.default_rng(rnd)
            store = LocalStateStore(path)
            k = 0
            while True:
                x = rng.normal(size=(%(batch)d, 16)) + 1j * rng.normal(size=(%(batch)d, 16))
                x /= np.linalg.norm(x, axis=1, keepdims=True)
                ids = [f"r{rnd}b{k}i{j}" for j in range(%(batch)d)]
                store.upsert(ids, x, [{"round": rnd, "batch": k}] * %(batch)d)
                os.write(1, f"ack {rnd} {k}\\n".encode())
                k += 1
        os.write(1, f"pid {pid}\\n".encode())
        os.waitpid(pid, 0)
        os.write(1, b"dead\\n")
    """
) % {"batch": BATCH}


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_sigkill_never_loses_an_acknowledged_batch_nor_shows_a_partial_one(tmp_path):
    path = tmp_path / "crash.db"
    helper = subprocess.Popen(
        [sys.executable, "-c", HELPER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    rng = random.Random(12345)
    acked: dict[int, int] = {}  # round -> number of acknowledged batches
    try:
        for rnd in range(ROUNDS):
            helper.stdin.write(f"{rnd}\n")
            helper.stdin.flush()
            pid = int(helper.stdout.readline().split()[1])
            first = helper.stdout.readline()  # the writer is running: at least one batch done
            assert first.startswith("ack"), first
            time.sleep(rng.uniform(0.0, 0.12))  # then kill it at a random moment
            os.kill(pid, signal.SIGKILL)
            n = 1
            for line in iter(helper.stdout.readline, ""):
                if line.startswith("dead"):
                    break
                assert line == f"ack {rnd} {n}\n", line
                n += 1
            acked[rnd] = n
    finally:
        helper.stdin.close()
        helper.wait(timeout=10)

    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store = qc.stores.open("local", path=path)
    total = 0
    for r in range(ROUNDS):
        k = 0
        while True:  # the acknowledged batches, and at most one unacknowledged one after them
            got = store.fetch([f"r{r}b{k}i{j}" for j in range(BATCH)])
            if not got:
                break
            assert len(got) == BATCH, f"round {r} batch {k}: {len(got)} of {BATCH} records"
            assert got[f"r{r}b{k}i0"].metadata == {"round": r, "batch": k}
            total += len(got)
            k += 1
        assert k >= acked[r], f"round {r}: {acked[r]} batches acknowledged, {k} found"
        assert k <= acked[r] + 1
    assert store.count() == total
    store.close()
