"""A durable ledger of paid executions, and budgets that are never exceeded.

:class:`CostTracker` keeps every execution it is told about in a SQLite file: backend, target,
job ids, shots, circuits, estimated and actual cost, seconds. A budget is a limit in US dollars
on one *budget id* (``"default"`` unless you name one): its spending is read from the ledger, so
it holds across threads, processes and restarts.

**Reserve, run, settle.** Before a job is submitted its estimated cost is *reserved*: in one
SQLite write transaction (``BEGIN IMMEDIATE``, which excludes every other writer, in this process
or another) the tracker adds up what is settled and what is reserved under the budget id and
refuses the reservation (:class:`~qstore.core.errors.BudgetExceededError`) if the new job would
not fit. After the job, the reservation is *settled* with the actual cost (or *released* when
nothing ran). Concurrent submissions therefore cannot oversubscribe a budget. The guarantee is
as good as the estimates: a job whose actual cost exceeds its estimate is recorded as it is and
logged as a warning. A reservation left open by a process that died stays counted (the job
may have run); :meth:`CostTracker.release_stale` releases those of dead processes on this host.

Default file: ``$QSTORE_DATA_DIR/costs.sqlite``, else ``$XDG_DATA_HOME/qstore/costs.sqlite``,
else ``~/.local/share/qstore/costs.sqlite``.

>>> tracker = CostTracker(budget=2.0, path=":memory:")
>>> r = tracker.reserve("ionq_hardware", 1.5, shots=100)
>>> tracker.settle(r, actual_cost=1.5, job_ids=["job-1"])
>>> tracker.remaining
0.5
>>> tracker.try_reserve("ionq_hardware", 1.0) is None  # would exceed the budget
True
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import math
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from qstore.core.errors import BudgetExceededError, CostLedgerError

__all__ = [
    "CostSummary",
    "CostTracker",
    "LedgerEntry",
    "Reservation",
    "default_ledger_path",
]

logger = logging.getLogger(__name__)

_EPS = 1e-9  # dollars: sums of float prices must not refuse a job that fits exactly
_SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    budget_id TEXT NOT NULL,
    session TEXT NOT NULL,
    backend TEXT NOT NULL,
    target TEXT,
    job_ids TEXT NOT NULL DEFAULT '[]',
    shots INTEGER NOT NULL DEFAULT 0,
    n_circuits INTEGER NOT NULL DEFAULT 0,
    estimated REAL NOT NULL,
    actual REAL,
    status TEXT NOT NULL,
    seconds REAL,
    created REAL NOT NULL,
    settled REAL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS executions_budget ON executions (budget_id, status);
"""
# What counts against a budget: open reservations at their estimate, settled jobs at their cost.
_COMMITTED = """
SELECT COALESCE(SUM(CASE status WHEN 'reserved' THEN estimated ELSE COALESCE(actual, estimated)
END), 0.0) FROM executions WHERE budget_id = ? AND status IN ('reserved', 'settled')
"""
_COLUMNS = (
    "id",
    "budget_id",
    "session",
    "backend",
    "target",
    "job_ids",
    "shots",
    "n_circuits",
    "estimated",
    "actual",
    "status",
    "seconds",
    "created",
    "settled",
    "host",
    "pid",
    "note",
)


def default_ledger_path() -> Path:
    """``$QSTORE_DATA_DIR/costs.sqlite``, else ``$XDG_DATA_HOME`` or ``~/.local/share``, then
    ``qstore/costs.sqlite``."""
    base = os.environ.get("QSTORE_DATA_DIR")
    if base:
        return Path(base) / "costs.sqlite"
    xdg = os.environ.get("XDG_DATA_HOME")
    root = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return root / "qstore" / "costs.sqlite"


@dataclass(frozen=True)
class Reservation:
    """An open reservation: ``estimated`` dollars held for one execution on ``backend``."""

    id: int
    backend: str
    estimated: float
    budget_id: str


@dataclass(frozen=True)
class LedgerEntry:
    """One row of the ledger. ``status``: ``'reserved'``, ``'settled'`` or ``'released'``."""

    id: int
    budget_id: str
    session: str
    backend: str
    target: str | None
    job_ids: tuple[str, ...]
    shots: int
    n_circuits: int
    estimated: float
    actual: float | None
    status: str
    seconds: float | None
    created: float
    settled: float | None
    host: str
    pid: int
    note: str

    @property
    def cost(self) -> float:
        """What the execution counts for: the actual cost when settled, else the estimate."""
        if self.status == "released":
            return 0.0
        return self.actual if self.actual is not None else self.estimated

    def as_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable data."""
        out = asdict(self)
        out["job_ids"] = list(self.job_ids)
        return out


@dataclass(frozen=True)
class CostSummary:
    """Spending per backend and against the budget; ``str()`` is a readable table.

    ``rows``: one mapping per backend (``backend, jobs, executions, shots, estimated, cost,
    seconds``); ``budget``/``spent``/``reserved``/``remaining`` in US dollars (``budget`` and
    ``remaining`` are ``None`` without a budget).
    """

    budget_id: str
    budget: float | None
    spent: float
    reserved: float
    remaining: float | None
    rows: tuple[dict[str, Any], ...]

    def as_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable data."""
        return {
            "budget_id": self.budget_id,
            "budget": self.budget,
            "spent": self.spent,
            "reserved": self.reserved,
            "remaining": self.remaining,
            "backends": [dict(r) for r in self.rows],
        }

    def __str__(self) -> str:
        head = f"{'backend':<24} {'jobs':>6} {'shots':>10} {'estimated $':>12} {'cost $':>10}"
        lines = [head + f" {'seconds':>9}", "-" * (len(head) + 10)]
        for r in self.rows:
            lines.append(
                f"{r['backend']:<24} {r['jobs']:>6} {r['shots']:>10} {r['estimated']:>12.2f} "
                f"{r['cost']:>10.2f} {r['seconds']:>9.2f}"
            )
        if not self.rows:
            lines.append("(no executions recorded)")
        if self.budget is None:
            lines.append(f"Spent ${self.spent:.2f} (no budget), budget id {self.budget_id!r}")
        else:
            assert self.remaining is not None
            lines.append(
                f"Budget ${self.budget:.2f} ({self.budget_id!r}): spent ${self.spent:.2f}, "
                f"reserved ${self.reserved:.2f}, left ${self.remaining:.2f}"
            )
        return "\n".join(lines)


class CostTracker:
    """Records every paid execution in a durable ledger and enforces a budget.

    Args:
        budget: the limit in US dollars for ``budget_id`` (``None``: record only).
        path: the SQLite file (``":memory:"`` for a ledger that lives as long as the tracker);
            default :func:`default_ledger_path`.
        budget_id: which budget this tracker spends from; trackers (in any process) with the
            same file and id share one budget.
        session: tags this tracker's rows (default: a fresh id), for per-run reports.

    Thread-safe (one connection, a lock around each transaction) and process-safe (SQLite write
    transactions); the methods are quick, synchronous calls that are safe from asyncio code.
    """

    def __init__(
        self,
        budget: float | None = None,
        path: str | os.PathLike[str] | None = None,
        *,
        budget_id: str = "default",
        session: str | None = None,
    ) -> None:
        if budget is not None and (
            isinstance(budget, bool)
            or not isinstance(budget, (int, float))
            or not math.isfinite(budget)
            or budget < 0
        ):
            raise CostLedgerError(
                f"budget = {budget!r}; give US dollars as a number >= 0, or None for no budget."
            )
        if not isinstance(budget_id, str) or not budget_id:
            raise CostLedgerError(f"budget_id = {budget_id!r}; give a non-empty name.")
        self.budget = None if budget is None else float(budget)
        self.budget_id = budget_id
        self.session = session or uuid.uuid4().hex
        memory = path is not None and str(path) == ":memory:"
        self.path: Path | None = None if memory else Path(path or default_ledger_path())
        self._lock = threading.Lock()
        self._conn = self._open()

    def __repr__(self) -> str:
        where = ":memory:" if self.path is None else str(self.path)
        return f"CostTracker(budget={self.budget!r}, path={where!r}, budget_id={self.budget_id!r})"

    # -- the connection ---------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        try:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            target = ":memory:" if self.path is None else str(self.path)
            conn = sqlite3.connect(
                target, timeout=60.0, isolation_level=None, check_same_thread=False
            )
            if self.path is not None:
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=60000")
            conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise CostLedgerError(
                f"Cannot open the cost ledger {self.path or ':memory:'}: {exc}. Pass path= (or "
                "set QSTORE_DATA_DIR) to a writable location."
            ) from exc
        return conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, exclusive of every other writer on the file."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise CostLedgerError(f"The cost ledger is locked or unwritable: {exc}") from exc
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return list(self._conn.execute(sql, tuple(args)).fetchall())
            except sqlite3.Error as exc:
                raise CostLedgerError(f"Cannot read the cost ledger: {exc}") from exc

    def close(self) -> None:
        """Close the ledger file."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> CostTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the budget -------------------------------------------------------------------------------
    @property
    def committed(self) -> float:
        """Dollars settled plus dollars reserved under this budget id."""
        return float(self._read(_COMMITTED, (self.budget_id,))[0][0])

    @property
    def spent(self) -> float:
        """Dollars of settled executions under this budget id."""
        rows = self._read(
            "SELECT COALESCE(SUM(COALESCE(actual, estimated)), 0.0) FROM executions "
            "WHERE budget_id = ? AND status = 'settled'",
            (self.budget_id,),
        )
        return float(rows[0][0])

    @property
    def reserved(self) -> float:
        """Dollars held by open reservations under this budget id."""
        rows = self._read(
            "SELECT COALESCE(SUM(estimated), 0.0) FROM executions "
            "WHERE budget_id = ? AND status = 'reserved'",
            (self.budget_id,),
        )
        return float(rows[0][0])

    @property
    def remaining(self) -> float:
        """Dollars left (``inf`` without a budget); never negative."""
        if self.budget is None:
            return math.inf
        return max(0.0, round(self.budget - self.committed, 9))

    def fits(self, cost: float) -> bool:
        """Whether a job of ``cost`` dollars fits in what is left now (no reservation made)."""
        return cost <= 0 or self.budget is None or cost <= self.remaining + _EPS

    # -- reserve, settle, release -----------------------------------------------------------------
    def reserve(
        self,
        backend: str,
        estimated_cost: float,
        *,
        shots: int = 0,
        n_circuits: int = 1,
        target: str | None = None,
        note: str = "",
    ) -> Reservation:
        """Hold ``estimated_cost`` dollars for one execution, atomically.

        Raises:
            BudgetExceededError: the job does not fit in what is left of the budget (the
                message names both amounts).
        """
        cost = float(estimated_cost)
        if not math.isfinite(cost) or cost < 0:
            raise CostLedgerError(f"estimated_cost = {estimated_cost!r}; give dollars >= 0.")
        with self._write() as conn:
            if self.budget is not None and cost > 0:
                committed = float(conn.execute(_COMMITTED, (self.budget_id,)).fetchone()[0])
                left = max(0.0, self.budget - committed)
                if cost > left + _EPS:
                    raise BudgetExceededError(
                        f"A job on {backend!r} is estimated at ${cost:.2f}, but only ${left:.2f} "
                        f"of the ${self.budget:.2f} budget {self.budget_id!r} is left. Raise "
                        "cost_budget, reduce shots or circuits, or route to a cheaper backend.",
                        remaining=left,
                        cost=cost,
                        backend=backend,
                    )
            cur = conn.execute(
                "INSERT INTO executions (budget_id, session, backend, target, shots, n_circuits, "
                "estimated, status, created, host, pid, note) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 'reserved', ?, ?, ?, ?)",
                (
                    self.budget_id,
                    self.session,
                    backend,
                    target,
                    int(shots),
                    int(n_circuits),
                    cost,
                    time.time(),
                    socket.gethostname(),
                    os.getpid(),
                    note,
                ),
            )
            rid = int(cur.lastrowid or 0)
        return Reservation(rid, backend, cost, self.budget_id)

    def try_reserve(
        self, backend: str, estimated_cost: float, **details: Any
    ) -> Reservation | None:
        """:meth:`reserve`, returning ``None`` instead of raising when the job does not fit."""
        try:
            return self.reserve(backend, estimated_cost, **details)
        except BudgetExceededError:
            return None

    def settle(
        self,
        reservation: Reservation,
        actual_cost: float | None = None,
        *,
        job_ids: Sequence[str] = (),
        seconds: float | None = None,
        shots: int | None = None,
        n_circuits: int | None = None,
    ) -> None:
        """Close a reservation with what the job cost (``None``: the estimate)."""
        actual = reservation.estimated if actual_cost is None else float(actual_cost)
        if actual > reservation.estimated + _EPS:
            logger.warning(
                "A job on %r cost $%.4f, more than its estimate $%.4f; the ledger records the "
                "actual cost.",
                reservation.backend,
                actual,
                reservation.estimated,
            )
        with self._write() as conn:
            conn.execute(
                "UPDATE executions SET status = 'settled', actual = ?, job_ids = ?, seconds = ?, "
                "settled = ?, shots = COALESCE(?, shots), n_circuits = COALESCE(?, n_circuits) "
                "WHERE id = ? AND status = 'reserved'",
                (
                    actual,
                    json.dumps(list(job_ids)),
                    seconds,
                    time.time(),
                    shots,
                    n_circuits,
                    reservation.id,
                ),
            )

    def release(self, reservation: Reservation, reason: str = "") -> None:
        """Free a reservation whose job did not run (nothing was charged)."""
        with self._write() as conn:
            conn.execute(
                "UPDATE executions SET status = 'released', actual = 0.0, settled = ?, "
                "note = CASE WHEN ? = '' THEN note ELSE ? END WHERE id = ? AND status = 'reserved'",
                (time.time(), reason, reason, reservation.id),
            )

    def record(
        self,
        backend: str,
        cost: float,
        *,
        estimated_cost: float | None = None,
        job_ids: Sequence[str] = (),
        shots: int = 0,
        n_circuits: int = 1,
        seconds: float | None = None,
        target: str | None = None,
    ) -> None:
        """Record an execution that was not reserved (e.g. free or run elsewhere)."""
        est = cost if estimated_cost is None else estimated_cost
        with self._write() as conn:
            conn.execute(
                "INSERT INTO executions (budget_id, session, backend, target, job_ids, shots, "
                "n_circuits, estimated, actual, status, seconds, created, settled, host, pid) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'settled', ?, ?, ?, ?, ?)",
                (
                    self.budget_id,
                    self.session,
                    backend,
                    target,
                    json.dumps(list(job_ids)),
                    int(shots),
                    int(n_circuits),
                    float(est),
                    float(cost),
                    seconds,
                    time.time(),
                    time.time(),
                    socket.gethostname(),
                    os.getpid(),
                ),
            )

    def release_stale(self) -> int:
        """Release open reservations of processes on this host that no longer run.

        Use it only when you know those jobs were not charged (e.g. after checking the
        provider's job list); returns how many were released.
        """
        host = socket.gethostname()
        rows = self._read(
            "SELECT id, pid FROM executions WHERE budget_id = ? AND status = 'reserved' "
            "AND host = ?",
            (self.budget_id, host),
        )
        dead = [rid for rid, pid in rows if pid != os.getpid() and not _alive(int(pid))]
        with self._write() as conn:
            for rid in dead:
                conn.execute(
                    "UPDATE executions SET status = 'released', actual = 0.0, settled = ?, "
                    "note = 'released: its process ended' WHERE id = ? AND status = 'reserved'",
                    (time.time(), rid),
                )
        return len(dead)

    # -- reading ----------------------------------------------------------------------------------
    def entries(
        self, *, session: str | None = None, backend: str | None = None, all_budgets: bool = False
    ) -> list[LedgerEntry]:
        """Ledger rows of this budget id (oldest first), optionally of one session or backend."""
        sql = f"SELECT {', '.join(_COLUMNS)} FROM executions WHERE 1 = 1"
        args: list[Any] = []
        if not all_budgets:
            sql += " AND budget_id = ?"
            args.append(self.budget_id)
        if session is not None:
            sql += " AND session = ?"
            args.append(session)
        if backend is not None:
            sql += " AND backend = ?"
            args.append(backend)
        rows = self._read(sql + " ORDER BY id", args)
        out = []
        for row in rows:
            d = dict(zip(_COLUMNS, row, strict=True))
            d["job_ids"] = tuple(json.loads(d["job_ids"] or "[]"))
            out.append(LedgerEntry(**d))
        return out

    def summary(self, *, session: str | None = None) -> CostSummary:
        """Per-backend totals (of one session, or of the whole budget id) and the budget."""
        per: dict[str, dict[str, Any]] = {}
        for e in self.entries(session=session):
            if e.status == "released":
                continue
            row = per.setdefault(
                e.backend,
                {
                    "backend": e.backend,
                    "jobs": 0,
                    "executions": 0,
                    "shots": 0,
                    "estimated": 0.0,
                    "cost": 0.0,
                    "seconds": 0.0,
                },
            )
            row["executions"] += 1
            row["jobs"] += len(e.job_ids) or 1
            row["shots"] += e.shots
            row["estimated"] += e.estimated
            row["cost"] += e.cost
            row["seconds"] += e.seconds or 0.0
        committed = self.committed
        reserved = self.reserved
        budget = self.budget
        return CostSummary(
            budget_id=self.budget_id,
            budget=budget,
            spent=max(0.0, committed - reserved),
            reserved=reserved,
            remaining=None if budget is None else max(0.0, round(budget - committed, 9)),
            rows=tuple(per[k] for k in sorted(per)),
        )

    def as_dict(self, *, session: str | None = None) -> dict[str, Any]:
        """The summary and every row, as plain data."""
        out = self.summary(session=session).as_dict()
        out["entries"] = [e.as_dict() for e in self.entries(session=session)]
        return out

    def to_csv(
        self, path: str | os.PathLike[str] | None = None, *, session: str | None = None
    ) -> str:
        """The rows as CSV (written to ``path`` when given); returns the text."""
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(_COLUMNS)
        for e in self.entries(session=session):
            d = e.as_dict()
            d["job_ids"] = " ".join(e.job_ids)
            writer.writerow([d[c] for c in _COLUMNS])
        text = buf.getvalue()
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def __str__(self) -> str:
        return str(self.summary())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
