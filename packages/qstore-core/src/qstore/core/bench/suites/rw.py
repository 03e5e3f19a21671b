"""Suite ``rw``: the reference workload, forward and forward + gradient, at several sizes.

Contenders: every installed Q-Store backend (``local`` in complex128 and complex64, plugins such
as ``qsim`` and ``lightning``) and what the installed distributions add (case ``"rw"`` of
:mod:`qstore.core.bench.plugins`): the framework layers (``qstore.torch``, ``qstore.tf``) and the
peers PennyLane ``lightning.qubit`` (adjoint, with and without ``device_vjp``), ``default.qubit``
(torch backprop), qsimcirq (sweeps, forward only) and TensorFlow Quantum (``Expectation``, adjoint;
only in an environment that has it). Figures are samples/s: 32 / median seconds of one batch.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

from qstore.core.bench import workload as wl
from qstore.core.bench.harness import Result, Run
from qstore.core.bench.plugins import RW, Contender, plugin_contenders
from qstore.core.bench.runner import (
    UNAVAILABLE,
    Log,
    Options,
    Predictor,
    UnavailableError,
    add_result,
    skip_note,
)

QUBITS = (4, 8, 12, 16, 20)
QUICK_QUBITS = (4, 8, 12)


def _local(dtype: str) -> Callable[[int], wl.Case]:
    def setup(n: int) -> wl.Case:
        from qstore.core.backends.local import LocalBackend

        return wl.backend_case(n, LocalBackend(dtype=dtype))

    return setup


def _registered(name: str) -> Callable[[int], wl.Case]:
    def setup(n: int) -> wl.Case:
        from qstore.core.backends import registry

        info = registry.info(name)
        if not info.available:  # e.g. a cloud backend without credentials: noted, not timed
            raise UnavailableError(f"backend {name!r} is not usable here: {info.reason}")
        return wl.backend_case(n, registry.get(name))

    return setup


def plugin_backends() -> list[Contender]:
    """Installed backends other than ``local`` (CPU ones; GPU backends need their own run)."""
    from qstore.core.backends import registry

    out = []
    for info in registry.all_info(refresh=True):
        if info.name in ("local", "local_cpu"):
            continue
        caps = info.capabilities
        if caps is not None and caps.gpu:
            continue
        out.append(Contender(f"qstore {info.name}", "qstore", _registered(info.name)))
    return out


def by_kind(contenders: list[Contender]) -> list[Contender]:
    """Ours first, then the peers (stable within each)."""
    return sorted(contenders, key=lambda c: c.kind != "qstore")


def contenders(options: Options, run: Run, log: Log) -> list[Contender]:
    """qstore-core's contenders, the installed backends and the installed distributions'
    (unavailable ones are skipped when they are set up)."""
    return by_kind(
        [
            Contender("qstore local complex128", "qstore", _local("complex128")),
            Contender("qstore local complex64", "qstore", _local("complex64")),
            *plugin_backends(),
            *plugin_contenders(RW, Contender, options, run, log),
        ]
    )


def measure_contenders(
    suite: str,
    sizes: tuple[int, ...],
    candidates: list[Contender],
    options: Options,
    run: Run,
    log: Log,
    metrics: tuple[tuple[str, str], ...] = (("forward", "forward"), ("forward+gradient", "grad")),
    unit: str = "samples/s",
    group: Callable[[int], str] = lambda n: "",
) -> None:
    """Time every selected contender at every size; skip the unavailable and the too slow."""
    predictor = Predictor(options.call_limit)
    unavailable: set[str] = set()
    for n in sizes:
        for c in candidates:
            if not options.selected(c.name) or c.name in unavailable:
                continue
            if c.max_n is not None and n > c.max_n:
                skip_note(run, log, f"{c.name} at n={n}", f"only up to n={c.max_n}: {c.why_max}")
                continue
            slow = predictor.too_slow(c.name, n)
            if slow is not None:
                skip_note(
                    run,
                    log,
                    f"{c.name} at n={n}",
                    f"one call predicted to take {slow:.0f} s (limit {options.call_limit:.0f} s"
                    ", --max-call)",
                )
                continue
            gc.collect()
            try:
                t0 = time.perf_counter()
                case = c.setup(n)
                setup_s = time.perf_counter() - t0
            except UNAVAILABLE as exc:
                unavailable.add(c.name)
                skip_note(run, log, c.name, f"not available here ({type(exc).__name__}: {exc})")
                continue
            except Exception as exc:  # a contender that breaks must not end the whole run
                skip_note(run, log, f"{c.name} at n={n}", f"set-up failed: {_brief(exc)}")
                continue
            for metric, which in metrics:
                fn = case.forward if which == "forward" else case.forward_grad
                if fn is None:
                    continue
                try:
                    timing = options.timing(fn)
                except UNAVAILABLE as exc:  # e.g. a plugin backend whose device is missing
                    unavailable.add(c.name)
                    skip_note(run, log, c.name, f"not available here ({_brief(exc)})")
                    break
                except Exception as exc:  # reported in the notes, the run goes on
                    skip_note(run, log, f"{c.name} {metric} at n={n}", f"failed: {_brief(exc)}")
                    break
                predictor.record(c.name, n, timing.median_s)
                res = Result.rate(
                    suite,
                    c.name,
                    metric,
                    timing,
                    per_call=wl.BATCH,
                    unit=unit,
                    n=n,
                    group=group(n),
                    kind=c.kind,
                    extra={"setup_s": round(setup_s, 4)},
                )
                add_result(run, log, res)
            del case


def _brief(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def run(options: Options, run: Run, log: Log) -> None:
    """Measure RW for every selected contender at ``options.qubits`` (default 4 ... 20)."""
    sizes = options.qubits or (QUICK_QUBITS if options.quick else QUBITS)
    run.options["rw"] = {"qubits": list(sizes), "batch": wl.BATCH, "layers": wl.LAYERS}
    measure_contenders("rw", tuple(sizes), contenders(options, run, log), options, run, log)
