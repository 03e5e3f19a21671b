"""Choosing a simulator by measurement: :meth:`SimulationBackendManager.auto_select`.

The candidates are the installed backends that are local (not remote), available and large
enough. Each is timed on a small version of the reference workload of PERF.md (RW: per-sample
RY encoding, layers of shared RY/RZ weights and a CNOT chain, <Z_i> out; here a batch of 8 at no
more than 10 qubits) and its results are checked against the built-in engine; backends that fail
are excluded with the reason. Timings are cached on disk per backend,
version, size and host, so only the first selection on a machine pays for them.

>>> import qstore.core as qc
>>> qc.SimulationBackendManager.auto_select(4) in qc.backends.available()
True
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import numbers
import os
import platform
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

from qstore.core.backends import registry
from qstore.core.backends.base import Capabilities
from qstore.core.backends.local import LocalBackend
from qstore.core.circuit import UnifiedCircuit
from qstore.core.errors import CapabilityError

__all__ = [
    "Calibration",
    "Candidate",
    "Selection",
    "SimulationBackendManager",
    "calibration_entries",
    "default_cache_path",
    "reference_circuit",
]

logger = logging.getLogger(__name__)

CACHE_SCHEMA = 1
# Changing the reference workload changes this id, which discards every cached timing.
WORKLOAD_ID = "rw-l4/batch8/v1"
_LAYERS = 4
_EXACT_TOLERANCE = 1e-3  # complex64 simulators pass, wrong ones do not
_SHOTS = 2048
_SHOTS_TOLERANCE = 0.25


def default_cache_path() -> Path:
    """``$QSTORE_CACHE_DIR/calibration.json``, else ``$XDG_CACHE_HOME`` or ``~/.cache``/qstore."""
    base = os.environ.get("QSTORE_CACHE_DIR")
    if base:
        return Path(base) / "calibration.json"
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = Path(xdg) if xdg else Path.home() / ".cache"
    return root / "qstore" / "calibration.json"


def host_fingerprint() -> str:
    """A short hash of what makes timings comparable: machine, CPU count, Python and NumPy."""
    parts = [
        platform.node(),
        platform.system(),
        platform.machine(),
        platform.processor(),
        str(os.cpu_count()),
        platform.python_version(),
        np.__version__,
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def reference_circuit(n_qubits: int, layers: int = _LAYERS) -> UnifiedCircuit:
    """The RW template: ``RY(x_i)`` encoding, then ``layers`` x (``RY(w_l_i_0)``,
    ``RZ(w_l_i_1)`` on every qubit, CNOT chain). ``x_*`` vary per sample, ``w_*`` are shared."""
    c = UnifiedCircuit(n_qubits, name="rw")
    c.add_parameterized_layer("RY", "x")
    for layer in range(layers):
        for q in range(n_qubits):
            c.add_gate("RY", q, f"w_{layer}_{q}_0").add_gate("RZ", q, f"w_{layer}_{q}_1")
        for q in range(n_qubits - 1):
            c.add_gate("CNOT", [q, q + 1])
    return c


@dataclass(frozen=True)
class Calibration:
    """Measured seconds of one reference batch at one or more sizes, and the fitted prediction.

    Beyond the largest measured size, time is modelled as ``c + k * n * 2**n`` (fixed overhead
    plus work per amplitude and gate) through the two measured points.
    """

    points: tuple[tuple[int, float], ...]

    def predict(self, n_qubits: int) -> float:
        """Estimated seconds per reference batch at ``n_qubits``."""
        pts = sorted(self.points)
        for m, t in pts:
            if m == n_qubits:
                return t
        (m_hi, t_hi) = pts[-1]
        if len(pts) == 1 or n_qubits < m_hi:
            return t_hi
        (m_lo, t_lo) = pts[-2]

        def work(m: int) -> float:
            return float(m * 2**m)

        k = (t_hi - t_lo) / (work(m_hi) - work(m_lo))
        if k <= 0:  # timing noise hid the growth: assume all the time scales with the work
            k = t_hi / work(m_hi)
        c = max(t_hi - k * work(m_hi), 0.0)
        return c + k * work(n_qubits)


@dataclass(frozen=True)
class Candidate:
    """How one installed backend fared in a selection."""

    name: str
    distribution: str | None
    version: str | None
    eligible: bool
    reasons: tuple[str, ...]
    calibration: Calibration | None = None
    seconds: float | None = None
    speed: float | None = None
    precision: float | None = None
    score: float | None = None
    from_cache: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable data."""
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "eligible": self.eligible,
            "reasons": list(self.reasons),
            "measured": None
            if self.calibration is None
            else [list(p) for p in self.calibration.points],
            "seconds": self.seconds,
            "speed": self.speed,
            "precision": self.precision,
            "score": self.score,
            "from_cache": self.from_cache,
        }


@dataclass(frozen=True)
class Selection:
    """The chosen backend and why: every candidate with its timing, score or exclusion reason."""

    name: str
    n_qubits: int
    prefer_speed: bool
    has_gpu: bool
    gpu_detected: bool
    candidates: tuple[Candidate, ...]
    cache_path: str | None = None
    workload: str = WORKLOAD_ID

    @property
    def chosen(self) -> Candidate:
        return next(c for c in self.candidates if c.name == self.name)

    def as_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable data."""
        return {
            "name": self.name,
            "n_qubits": self.n_qubits,
            "prefer_speed": self.prefer_speed,
            "has_gpu": self.has_gpu,
            "gpu_detected": self.gpu_detected,
            "workload": self.workload,
            "cache_path": self.cache_path,
            "candidates": [c.as_dict() for c in self.candidates],
        }

    def __str__(self) -> str:
        goal = "speed" if self.prefer_speed else "precision"
        gpu = "yes" if self.has_gpu else "no"
        how = " (detected from declared capabilities)" if self.gpu_detected else ""
        lines = [
            f"Selected {self.name!r} for {self.n_qubits} qubits, preferring {goal}; "
            f"GPU: {gpu}{how}",
            f"{'candidate':<18} {'score':>6} {'s/batch':>10} {'precision':>9}  notes",
        ]
        for c in self.candidates:
            if c.eligible:
                assert c.seconds is not None and c.score is not None
                assert c.calibration is not None and c.precision is not None
                measured = ", ".join(f"{m}q {t * 1e3:.2f} ms" for m, t in c.calibration.points)
                src = "cached" if c.from_cache else "measured now"
                note = "; ".join((f"{src}: {measured}", *c.reasons))
                mark = "*" if c.name == self.name else " "
                lines.append(
                    f"{mark}{c.name:<17} {c.score:>6.3f} {c.seconds:>10.2e} "
                    f"{c.precision:>9.1f}  {note}"
                )
            else:
                reason = "; ".join(c.reasons)
                lines.append(f" {c.name:<17} {'-':>6} {'-':>10} {'-':>9}  excluded: {reason}")
        lines.append(
            "Score: 0.9 x speed + 0.1 x precision when preferring speed, the reverse otherwise; "
            "speed = fastest estimate / own estimate."
        )
        if self.cache_path:
            lines.append(f"Calibration cache: {self.cache_path}")
        return "\n".join(lines)


@dataclass
class _Cache:
    """The on-disk calibration cache (JSON), tolerant of a missing or corrupt file."""

    path: Path | None
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    dirty: bool = False

    @classmethod
    def load(cls, path: Path | None) -> _Cache:
        if path is None or not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if (
                not isinstance(data, dict)
                or data.get("schema") != CACHE_SCHEMA
                or data.get("workload") != WORKLOAD_ID
                or not isinstance(data.get("entries"), dict)
            ):
                raise ValueError("unknown schema or workload")
            entries = {
                k: v
                for k, v in data["entries"].items()
                if isinstance(v, dict) and isinstance(v.get("seconds"), (int, float))
            }
        except (OSError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
            logger.warning("Ignoring the calibration cache %s (%s); recalibrating.", path, exc)
            return cls(path, dirty=True)
        return cls(path, entries)

    def get(self, key: str) -> float | None:
        entry = self.entries.get(key)
        return None if entry is None else float(entry["seconds"])

    def put(self, key: str, backend: str, version: str, host: str, seconds: float) -> None:
        # A new version of a backend makes its old timings on this host worthless.
        stale = [
            k
            for k, v in self.entries.items()
            if v.get("backend") == backend and v.get("host") == host and v.get("version") != version
        ]
        for k in stale:
            del self.entries[k]
        self.entries[key] = {
            "backend": backend,
            "version": version,
            "host": host,
            "seconds": seconds,
            "measured_at": time.time(),
        }
        self.dirty = True

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        data = {"schema": CACHE_SCHEMA, "workload": WORKLOAD_ID, "entries": self.entries}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".calibration-", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(data, f, indent=1, sort_keys=True)
                os.replace(tmp, self.path)  # atomic: readers never see half a file
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        except OSError as exc:
            logger.warning("Cannot write the calibration cache %s: %s", self.path, exc)
        self.dirty = False


def _cache_key(name: str, version: str, n_qubits: int, host: str) -> str:
    return f"{name}|{version}|{n_qubits}|{host}"


def _time_workload(
    backend: Any, caps: Capabilities, n_qubits: int, batch: int, repetitions: int
) -> float:
    """Seconds of the fastest of ``repetitions`` timed runs (after one warm-up, also checked)."""
    circuit = reference_circuit(n_qubits)
    rng = np.random.default_rng(1234)
    names = [f"x_{q}" for q in range(n_qubits)]
    x = rng.uniform(0, np.pi, (batch, n_qubits))
    weights = [p for p in circuit.parameter_names if p.startswith("w_")]
    angles = rng.uniform(0, 2 * np.pi, len(weights))
    shared = {w: float(v) for w, v in zip(weights, angles, strict=True)}
    shots = None if caps.exact else _SHOTS

    def run() -> npt.NDArray[np.float64]:
        kwargs: dict[str, Any] = {"names": names, "shared": shared}
        if shots is not None:
            kwargs.update(shots=shots, seed=0)
        return np.asarray(backend.expectation(circuit, None, x, **kwargs), dtype=np.float64)

    got = run()  # warm-up: compilation, JIT, device transfers
    reference = LocalBackend().expectation(circuit, None, x, names=names, shared=shared)
    if got.shape != reference.shape:
        raise CapabilityError(
            f"returned expectations of shape {list(got.shape)}, expected {list(reference.shape)}"
        )
    err = float(np.max(np.abs(got - reference))) if got.size else 0.0
    tol = _EXACT_TOLERANCE if shots is None else _SHOTS_TOLERANCE
    if not math.isfinite(err) or err > tol:
        raise CapabilityError(f"results differ from the reference engine by {err:.2e} (> {tol})")
    best = math.inf
    for _ in range(repetitions):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def _excluded(inf: registry.BackendInfo, reason: str) -> Candidate:
    return Candidate(inf.name, inf.distribution, inf.version, eligible=False, reasons=(reason,))


def _precision(caps: Capabilities) -> float:
    if not caps.exact:
        return 0.0
    return 1.0 if "complex128" in caps.dtypes else 0.5


class SimulationBackendManager:
    """Picks the simulator to use from what is installed, by declared capabilities and timing.

    Args:
        cache_path: calibration cache file; default :func:`default_cache_path`.
        batch: batch size of the reference workload.
        repetitions: timed runs per measurement (the fastest counts).
        calibration_qubits: largest size measured; bigger circuits are extrapolated.

    >>> import qstore.core as qc
    >>> sel = qc.SimulationBackendManager.auto_select(4, explain=True)
    >>> sel.name == sel.chosen.name and sel.chosen.eligible
    True
    """

    def __init__(
        self,
        cache_path: str | os.PathLike[str] | None = None,
        *,
        batch: int = 8,
        repetitions: int = 2,
        calibration_qubits: int = 10,
    ) -> None:
        for field_name, value, low in (
            ("batch", batch, 1),
            ("repetitions", repetitions, 1),
            ("calibration_qubits", calibration_qubits, 5),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise CapabilityError(f"{field_name} must be an int >= {low}, got {value!r}.")
        self.cache_path = Path(cache_path) if cache_path is not None else None
        self.batch = batch
        self.repetitions = repetitions
        self.calibration_qubits = calibration_qubits

    @overload
    @classmethod
    def auto_select(
        cls,
        n_qubits: int,
        has_gpu: bool | None = None,
        prefer_speed: bool = True,
        explain: Literal[False] = False,
    ) -> str: ...

    @overload
    @classmethod
    def auto_select(
        cls,
        n_qubits: int,
        has_gpu: bool | None = None,
        prefer_speed: bool = True,
        *,
        explain: Literal[True],
    ) -> Selection: ...

    @classmethod
    def auto_select(
        cls,
        n_qubits: int,
        has_gpu: bool | None = None,
        prefer_speed: bool = True,
        explain: bool = False,
    ) -> str | Selection:
        """Name of the best installed simulator for ``n_qubits`` (a :class:`Selection` with
        ``explain=True``); uses the default cache. See :meth:`select`."""
        selection = cls().select(n_qubits, has_gpu=has_gpu, prefer_speed=prefer_speed)
        return selection if explain else selection.name

    def select(
        self, n_qubits: int, has_gpu: bool | None = None, prefer_speed: bool = True
    ) -> Selection:
        """Rank the installed simulators for ``n_qubits`` and return the full :class:`Selection`.

        ``has_gpu=None`` uses GPU backends when one declares itself available; ``False`` excludes
        them. ``prefer_speed=False`` ranks exact, double-precision simulators first.

        Raises:
            CapabilityError: no installed simulator can run ``n_qubits`` (reasons included).
        """
        if isinstance(n_qubits, bool) or not isinstance(n_qubits, numbers.Integral) or n_qubits < 1:
            raise CapabilityError(f"n_qubits must be a positive int, got {n_qubits!r}.")
        n_qubits = int(n_qubits)
        path = self.cache_path if self.cache_path is not None else default_cache_path()
        cache = _Cache.load(path)
        host = host_fingerprint()
        infos = registry.all_info()
        gpu_detected = has_gpu is None
        if has_gpu is None:
            has_gpu = any(
                i.available and i.capabilities is not None and i.capabilities.gpu for i in infos
            )

        candidates: list[Candidate] = []
        for inf in infos:
            caps = inf.capabilities
            reason = self._exclusion(inf, caps, n_qubits, has_gpu)
            if reason or caps is None:
                candidates.append(_excluded(inf, reason))
                continue
            try:
                calibration, cached = self._calibrate(inf, caps, n_qubits, cache, host)
            except Exception as exc:  # a plugin failing here is excluded, with the reason shown
                logger.warning("Backend %r failed calibration: %s", inf.name, exc)
                reason = f"calibration failed: {type(exc).__name__}: {exc}"
                candidates.append(_excluded(inf, reason))
                continue
            notes = [
                f"max {caps.max_qubits} qubits",
                "exact" if caps.exact else "shots only",
                "complex128" if "complex128" in caps.dtypes else "/".join(caps.dtypes),
                "GPU" if caps.gpu else "CPU",
            ]
            candidates.append(
                Candidate(
                    name=inf.name,
                    distribution=inf.distribution,
                    version=inf.version,
                    eligible=True,
                    reasons=tuple(notes),
                    calibration=calibration,
                    seconds=calibration.predict(n_qubits),
                    precision=_precision(caps),
                    from_cache=cached,
                )
            )
        cache.save()

        ranked = self._score(candidates, prefer_speed)
        eligible = [c for c in ranked if c.eligible]
        if not eligible:
            why = "; ".join(f"{c.name}: {', '.join(c.reasons)}" for c in ranked) or "none"
            raise CapabilityError(
                f"No installed simulator can run {n_qubits} qubits here ({why}). Reduce the "
                "qubit count or install a larger simulator, e.g. "
                f"{registry.install_hint('qstore-sim-qsim')}."
            )
        return Selection(
            name=eligible[0].name,
            n_qubits=n_qubits,
            prefer_speed=prefer_speed,
            has_gpu=has_gpu,
            gpu_detected=gpu_detected,
            candidates=tuple(ranked),
            cache_path=None if path is None else str(path),
        )

    def calibration(self, name: str, n_qubits: int) -> Calibration:
        """The measured timing of one installed simulator on the reference workload at
        ``n_qubits`` (read from the cache, measured and cached when missing).

        Raises:
            CapabilityError: the backend is remote, unavailable, too small, or fails the check.
        """
        inf = registry.info(name)
        caps = inf.capabilities
        reason = self._exclusion(inf, caps, n_qubits, has_gpu=True)
        if reason or caps is None:
            raise CapabilityError(f"Backend {name!r} cannot be calibrated: {reason}.")
        path = self.cache_path if self.cache_path is not None else default_cache_path()
        cache = _Cache.load(path)
        calibration, _ = self._calibrate(inf, caps, n_qubits, cache, host_fingerprint())
        cache.save()
        return calibration

    @staticmethod
    def _exclusion(
        inf: registry.BackendInfo, caps: Capabilities | None, n_qubits: int, has_gpu: bool
    ) -> str:
        if caps is None:
            return inf.reason or "no capabilities"
        if caps.remote:
            return "remote service, not a local simulator"
        if not inf.available:
            return f"unavailable: {inf.reason}"
        if caps.max_qubits < n_qubits:
            return f"supports at most {caps.max_qubits} qubits"
        if caps.gpu and not has_gpu:
            return "GPU backend, and has_gpu=False"
        return ""

    def _calibrate(
        self,
        inf: registry.BackendInfo,
        caps: Capabilities,
        n_qubits: int,
        cache: _Cache,
        host: str,
    ) -> tuple[Calibration, bool]:
        hi = min(n_qubits, self.calibration_qubits)
        sizes = [hi - 4, hi] if n_qubits > hi else [hi]
        backend: Any = None
        points = []
        all_cached = True
        for m in sizes:
            # Backends registered at run time have no version to key on: always measured.
            key = None if inf.version is None else _cache_key(inf.name, inf.version, m, host)
            seconds = None if key is None else cache.get(key)
            if seconds is None:
                all_cached = False
                if backend is None:
                    backend = registry.get(inf.name)
                seconds = _time_workload(backend, caps, m, self.batch, self.repetitions)
                if key is not None:
                    cache.put(key, inf.name, str(inf.version), host, seconds)
            points.append((m, seconds))
        return Calibration(tuple(points)), all_cached

    @staticmethod
    def _score(candidates: list[Candidate], prefer_speed: bool) -> list[Candidate]:
        times = [c.seconds for c in candidates if c.eligible and c.seconds is not None]
        fastest = min(times, default=1.0)
        w_speed = 0.9 if prefer_speed else 0.1
        out = []
        for c in candidates:
            if not c.eligible or c.seconds is None or c.precision is None:
                out.append(c)
                continue
            speed = fastest / c.seconds if c.seconds > 0 else 1.0
            score = w_speed * speed + (1 - w_speed) * c.precision
            out.append(replace(c, speed=speed, score=score))
        return sorted(out, key=lambda c: (not c.eligible, -(c.score or 0.0), c.name))


def calibration_entries(path: str | os.PathLike[str] | None = None) -> Mapping[str, Any]:
    """The cached calibration entries (for inspection and tests)."""
    return dict(_Cache.load(Path(path) if path is not None else default_cache_path()).entries)
