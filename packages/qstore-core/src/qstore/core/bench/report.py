"""Markdown tables, ratios against peers and PNG plots from benchmark results.

Ratios are speed-ups: above 1 means the row is faster than the reference. For rates (samples/s,
circuits/s) the ratio is ``value / best_peer``; for durations (fit time), ``best_peer / value``.
The reference is the best ``kind='peer'`` result of the same case (suite, group, metric, qubits,
threads); several environments' files (say, the bench environment's and the TFQ one's) are merged
first, so peers that cannot share an environment still meet in one table.

>>> from qstore.core.bench.harness import Result
>>> rs = [
...     Result("rw", "ours", "forward", 300.0, "samples/s", n=8),
...     Result("rw", "peer A", "forward", 100.0, "samples/s", n=8, kind="peer"),
...     Result("rw", "peer B", "forward", 150.0, "samples/s", n=8, kind="peer"),
... ]
>>> ratios = peer_ratios(rs)
>>> ratios[rs[0].key()]
(2.0, 'peer B')
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from qstore.core.bench.harness import Result, load_runs

__all__ = [
    "SEED_CIRCUITS_PER_S",
    "format_value",
    "merge_results",
    "peer_ratios",
    "plot_results",
    "render_markdown",
    "write_report",
]

SEED_CIRCUITS_PER_S = 0.57
"""Circuits/s the seed (Q-Store v3.5) quotes for 8-qubit, depth-4 circuits; its target is 3-5."""

Key = tuple[str, str, str, "int | None", str, "int | None"]
CaseKey = tuple[str, str, str, "int | None", "int | None"]


def _case(r: Result) -> CaseKey:
    return (r.suite, r.group, r.metric, r.n, r.threads)


def speedup(value: float, reference: float, higher_is_better: bool) -> float:
    """How many times better ``value`` is than ``reference`` (above 1: better)."""
    if value <= 0 or reference <= 0:
        return math.nan
    return value / reference if higher_is_better else reference / value


def best_of(results: Iterable[Result]) -> Result | None:
    """The best result by value (largest rate, shortest time), or None."""
    rs = list(results)
    if not rs:
        return None
    if rs[0].higher_is_better:
        return max(rs, key=lambda r: r.value)
    return min(rs, key=lambda r: r.value)


def peer_ratios(results: Sequence[Result], kind: str = "peer") -> dict[Key, tuple[float, str]]:
    """For every result, its speed-up against the best result of ``kind`` in the same case.

    Returns ``key -> (ratio, reference contender)``; cases without such a result are left out.
    """
    by_case: dict[CaseKey, list[Result]] = {}
    for r in results:
        if r.kind == kind:
            by_case.setdefault(_case(r), []).append(r)
    out: dict[Key, tuple[float, str]] = {}
    for r in results:
        ref = best_of(by_case.get(_case(r), []))
        if ref is not None:
            out[r.key()] = (speedup(r.value, ref.value, r.higher_is_better), ref.contender)
    return out


def merge_results(runs: Sequence[Mapping[str, Any]]) -> list[Result]:
    """All results of ``runs``; of two results for the same figure, the later run's wins."""
    ordered = sorted(runs, key=lambda run: str(run.get("finished", "")))
    merged: dict[Key, Result] = {}
    for run in ordered:
        for r in run["results"]:
            merged[r.key()] = r
    return list(merged.values())


def format_value(value: float) -> str:
    """Three significant digits, thousands separated: ``4,152``, ``221``, ``2.83``, ``0.0412``."""
    if not math.isfinite(value):
        return "-"
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:.{digits}f}"


def _ratio(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    if x >= 100:
        return f"{x:,.0f}×"
    return f"{x:.1f}×" if x >= 0.95 else f"{x:.2f}×"


def _iqr(r: Result) -> str:
    rng = r.value_range
    if rng is None or r.reps < 2:
        return ""
    lo, hi = rng
    return f" ({format_value(lo)}–{format_value(hi)})"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _kind_order(r: Result) -> int:
    return {"qstore": 0, "baseline": 1, "peer": 2}.get(r.kind, 3)


def _rw_tables(results: Sequence[Result]) -> list[str]:
    ratios = peer_ratios(results)
    lines: list[str] = []
    for threads in sorted({r.threads or 0 for r in results}):
        rs = [r for r in results if (r.threads or 0) == threads]
        lines += ["", f"**{threads} thread{'s' if threads != 1 else ''}**", ""]
        header = ["n", "contender", "forward (samples/s)", "forward + gradient (samples/s)"]
        header += ["fwd vs best peer", "fwd+grad vs best peer"]
        rows = []
        cells: dict[tuple[int | None, str], dict[str, Result]] = {}
        for r in rs:
            cells.setdefault((r.n, r.contender), {})[r.metric] = r
        keys = sorted(
            cells,
            key=lambda k: (
                k[0] or 0,
                min(_kind_order(r) for r in cells[k].values()),
                -max(r.value for r in cells[k].values()),
            ),
        )
        for n, contender in keys:
            c = cells[(n, contender)]
            fwd, grad = c.get("forward"), c.get("forward+gradient")
            row = [str(n), contender]
            for cell in (fwd, grad):
                row.append("-" if cell is None else format_value(cell.value) + _iqr(cell))
            for cell in (fwd, grad):
                if cell is None or cell.kind == "peer":
                    row.append("")
                else:
                    ratio = ratios.get(cell.key())
                    row.append(_ratio(ratio[0]) + f" ({ratio[1]})" if ratio else "-")
            rows.append(row)
        lines += _table(header, rows)
    return lines


def _circuits_tables(results: Sequence[Result]) -> list[str]:
    ratios = peer_ratios(results)
    lines: list[str] = []
    for threads in sorted({r.threads or 0 for r in results}):
        rs = [r for r in results if (r.threads or 0) == threads]
        rs.sort(key=lambda r: (r.group, _kind_order(r), -r.value))
        lines += ["", f"**{threads} thread{'s' if threads != 1 else ''}**", ""]
        header = ["mode", "contender", "circuits/s", "vs best peer", "vs seed (0.57/s)"]
        rows = []
        for r in rs:
            ratio = ratios.get(r.key())
            vs_peer = "" if r.kind == "peer" else (_ratio(ratio[0]) if ratio else "-")
            seed = _ratio(r.value / SEED_CIRCUITS_PER_S)
            rows.append([r.group, r.contender, format_value(r.value) + _iqr(r), vs_peer, seed])
        lines += _table(header, rows)
    return lines


def _fashion_tables(results: Sequence[Result]) -> list[str]:
    fits = [r for r in results if r.metric == "fit time"]
    acc = {(r.group, r.contender, r.threads): r for r in results if r.metric == "test accuracy"}
    ratios = peer_ratios(fits)
    twins = {
        (r.group, r.threads): r for r in fits if r.kind == "baseline"
    }  # the classical twin of each framework
    lines: list[str] = []
    for threads in sorted({r.threads or 0 for r in fits}):
        rs = [r for r in fits if (r.threads or 0) == threads]
        rs.sort(key=lambda r: (r.group, _kind_order(r), r.value))
        lines += ["", f"**{threads} thread{'s' if threads != 1 else ''}**", ""]
        header = ["framework", "model middle", "fit time (s)", "test accuracy", "× classical twin"]
        header += ["speed-up vs TFQ"]
        rows = []
        for r in rs:
            a = acc.get((r.group, r.contender, r.threads))
            twin = twins.get((r.group, r.threads))
            x_twin = "" if twin is None or twin is r else _ratio(r.value / twin.value)
            ratio = ratios.get(r.key())
            vs_peer = "" if r.kind == "peer" else (_ratio(ratio[0]) if ratio else "-")
            rows.append(
                [
                    r.group,
                    r.contender,
                    format_value(r.value) + _iqr(r),
                    "-" if a is None else f"{100 * a.value:.1f} %",
                    x_twin,
                    vs_peer,
                ]
            )
        lines += _table(header, rows)
    return lines


def _generic_tables(results: Sequence[Result]) -> list[str]:
    ratios = peer_ratios(results)
    rows = []
    for r in sorted(results, key=lambda r: (r.group, r.metric, r.n or 0, _kind_order(r))):
        ratio = ratios.get(r.key())
        rows.append(
            [
                r.group or "-",
                "-" if r.n is None else str(r.n),
                r.metric,
                r.contender,
                f"{format_value(r.value)} {r.unit}",
                str(r.threads),
                "" if r.kind == "peer" or ratio is None else _ratio(ratio[0]),
            ]
        )
    header = ["group", "n", "metric", "contender", "value", "threads", "vs best peer"]
    return ["", *_table(header, rows)]


def _live_notes(
    runs: Sequence[Mapping[str, Any]], suite: str, results: Sequence[Result]
) -> list[str]:
    """The suite's notes, less "skipped X: not available" where another environment measured X."""
    measured = {r.contender for r in results} | {f"{r.group} {r.contender}" for r in results}
    out = set()
    for run in runs:
        if run.get("suite") != suite:
            continue
        for note in run.get("notes", []):
            name = note.removeprefix("skipped ").split(": not available", 1)[0]
            if "not available" in note and name in measured:
                continue
            threads = run.get("threads")
            out.add(f"{note} [{threads} thread{'s' if threads != 1 else ''}]")
    return sorted(out)


SUITE_TITLES = {
    "rw": "Reference workload (batch 32, 4 layers, ⟨Z_i⟩ on every qubit)",
    "circuits": "Circuits per second (distinct bound circuits, 8 qubits, depth 4)",
    "fashion-mnist": "Fashion-MNIST end to end (the seed's hybrid model)",
}


def _runs_section(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    rows = []
    keep = ("numpy", "torch", "tensorflow", "pennylane", "tensorflow-quantum", "qsimcirq")
    for run in sorted(runs, key=lambda r: (str(r.get("suite")), str(r.get("env")))):
        machine = run.get("machine", {})
        vers = run.get("versions", {})
        load = machine.get("load_average") or []
        rows.append(
            [
                str(run.get("suite")),
                str(run.get("env")),
                str(run.get("threads")),
                str(run.get("started")),
                f"{machine.get('cpu', '?')} ({machine.get('usable_cpus', '?')} CPUs)",
                "/".join(f"{x:.1f}" for x in load) if load else "-",
                ", ".join(f"{k} {vers[k]}" for k in keep if k in vers),
            ]
        )
    header = ["suite", "env", "threads", "date (UTC)", "machine", "load avg", "versions"]
    return ["## Runs", "", *_table(header, rows)]


def render_markdown(
    runs: Sequence[Mapping[str, Any]], plots: Mapping[str, Sequence[str]] | None = None
) -> str:
    """The report: one section per suite (tables with ratios, plots), notes, then the runs."""
    results = merge_results(runs)
    plots = plots or {}
    lines = ["# Q-Store benchmark results", ""]
    lines.append(
        "Figures are medians of repeated timed calls after a warm-up (interquartile range in "
        "parentheses). Ratios are speed-ups against the best peer of the same case and thread "
        "setting, measured in the same session (above 1: Q-Store is faster)."
    )
    if any(bool(run.get("options", {}).get("quick")) for run in runs):
        lines += ["", "**Quick run** (`--quick`): fewer qubits, repetitions and samples."]
    order = list(SUITE_TITLES)
    suites = sorted(
        {r.suite for r in results},
        key=lambda s: (order.index(s) if s in order else len(order), s),
    )
    builders = {"rw": _rw_tables, "circuits": _circuits_tables, "fashion-mnist": _fashion_tables}
    for suite in suites:
        rs = [r for r in results if r.suite == suite]
        lines += ["", f"## {SUITE_TITLES.get(suite, suite)}"]
        lines += builders.get(suite, _generic_tables)(rs)
        for png in plots.get(suite, []):
            lines += ["", f"![{suite}]({png})"]
        notes = _live_notes(runs, suite, rs)
        if notes:
            lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
        for run in runs:
            if run.get("suite") == suite:
                for name, text in run.get("profiles", {}).items():
                    where = f"{run.get('env')} env, {run.get('threads')} thread(s)"
                    lines += ["", f"Where the time goes, {name} ({where}):", ""]
                    lines += ["```", str(text).rstrip(), "```"]
    lines += ["", *_runs_section(runs), ""]
    return "\n".join(lines)


def plot_results(
    results: Sequence[Result], out_dir: str | os.PathLike[str]
) -> tuple[dict[str, list[str]], str]:
    """PNG plots per suite and thread setting; returns ``(suite -> file names, note)``.

    Needs matplotlib; without it nothing is drawn and the note says so.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}, "matplotlib is not installed: no plots (pip install matplotlib)."
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[str]] = {}
    for suite in sorted({r.suite for r in results}):
        for threads in sorted({r.threads or 0 for r in results if r.suite == suite}):
            rs = [r for r in results if r.suite == suite and (r.threads or 0) == threads]
            name = f"{suite}-t{threads}.png"
            if suite == "rw":
                fig = _plot_rw(plt, rs, threads)
            elif suite == "fashion-mnist":
                fig = _plot_bars(
                    plt,
                    [r for r in rs if r.metric == "fit time"],
                    "fit time (s)",
                    f"Fashion-MNIST fit time, {threads} thread(s)",
                    log=False,
                )
            else:
                fig = _plot_bars(plt, rs, rs[0].unit, f"{suite}, {threads} thread(s)", log=True)
            if fig is None:
                continue
            fig.savefig(out / name, dpi=80)
            plt.close(fig)
            files.setdefault(suite, []).append(name)
    return files, ""


def _plot_rw(plt: Any, rs: Sequence[Result], threads: int) -> Any:
    metrics = [m for m in ("forward", "forward+gradient") if any(r.metric == m for r in rs)]
    if not metrics:
        return None
    fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 4.2), squeeze=False)
    contenders = sorted({r.contender for r in rs}, key=lambda c: (not c.startswith("qstore"), c))
    colors = plt.get_cmap("tab20").colors
    for ax, metric in zip(axes[0], metrics, strict=True):
        for i, c in enumerate(contenders):
            pts = sorted(
                (r.n or 0, r.value, r.kind) for r in rs if r.contender == c and r.metric == metric
            )
            if not pts:
                continue
            peer = pts[0][2] == "peer"
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                "--" if peer else "-",
                marker="s" if peer else "o",
                color=colors[(2 * i) % 20 if i < 10 else (2 * i + 1) % 20],
                label=c,
            )
        ax.set_yscale("log")
        ax.set_xlabel("qubits")
        ax.set_ylabel("samples/s")
        ax.set_title(f"RW {metric}, {threads} thread(s)")
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize="small", frameon=False)
    fig.tight_layout(rect=(0, 0.08 + 0.035 * ((len(labels) - 1) // 3), 1, 1))
    return fig


def _plot_bars(plt: Any, rs: Sequence[Result], unit: str, title: str, log: bool) -> Any:
    if not rs:
        return None
    rs = sorted(rs, key=lambda r: r.value)
    labels = [f"{r.group}: {r.contender}" if r.group else r.contender for r in rs]
    colors = [{"qstore": "C0", "baseline": "C2", "peer": "C1"}.get(r.kind, "C7") for r in rs]
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(rs) + 1.2))
    ax.barh(labels, [r.value for r in rs], color=colors)
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(unit)
    ax.set_title(title)
    ax.grid(True, axis="x", alpha=0.3)
    from matplotlib.patches import Patch

    kinds = (
        ("qstore", "C0", "Q-Store"),
        ("baseline", "C2", "classical twin"),
        ("peer", "C1", "peer"),
    )
    handles = [Patch(color=c, label=t) for k, c, t in kinds if any(r.kind == k for r in rs)]
    ax.legend(handles=handles, fontsize="small", loc="lower right")
    fig.tight_layout()
    return fig


def write_report(
    paths: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str] | None = None
) -> tuple[Path, list[str]]:
    """Merge the result files under ``paths`` into ``report.md`` and plots in ``out_dir``.

    ``out_dir`` defaults to the first path (a directory). Returns the report and notes (e.g. no
    matplotlib).
    """
    runs = load_runs(paths)
    out = Path(out_dir if out_dir is not None else paths[0])
    if out.is_file():
        out = out.parent
    results = merge_results(runs)
    plots, note = plot_results(results, out)
    text = render_markdown(runs, plots)
    notes = [note] if note else []
    if note:
        text += f"\n{note}\n"
    path = out / "report.md"
    path.write_text(text, "utf-8")
    return path, notes
