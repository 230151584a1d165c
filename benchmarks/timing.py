"""What every benchmark here shares: alternating timing, paired statistics, the machine's name and description, and
the progress bar."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn


def time_alternating(
    calls: dict[str, Callable[[], None]],
    steps: int,
    warmup: int,
    synchronize: Callable[[], None] | None = None,
    on_round: Callable[[int], None] | None = None,
) -> dict[str, list[float]]:
    """Per implementation, the times of ``steps`` calls after ``warmup`` untimed rounds.

    The implementations alternate, with the order rotated every round, so that slow drifts of the
    machine (clock, other processes) hit all of them alike. ``synchronize`` (e.g. a CUDA synchronise)
    runs before and after each timed call, so asynchronous work is counted where it belongs.
    ``on_round`` (e.g. a progress bar's update) is called with the index of each round once it is done.
    """
    impls = list(calls)
    times: dict[str, list[float]] = {impl: [] for impl in impls}
    for round_index in range(warmup + steps):
        shift = round_index % len(impls)
        for impl in impls[shift:] + impls[:shift]:
            if synchronize is not None:
                synchronize()
            start = time.perf_counter()
            calls[impl]()
            if synchronize is not None:
                synchronize()
            if round_index >= warmup:
                times[impl].append(time.perf_counter() - start)
        if on_round is not None:
            on_round(round_index)
    return times


def summarize(times: dict[str, list[float]], ours: str) -> dict[str, dict[str, float | None]]:
    """Median, interquartile range and the paired ratio against ``ours`` of each implementation's times.

    The ratio is the median over rounds of ``t_impl / t_ours`` (> 1: ours is faster), and ``ratio_q1`` and
    ``ratio_q3`` are the quartiles of those per-round ratios (their spread); all three are None for ``ours``.
    Pairing by round cancels most of the machine's drift, which a ratio of medians would not.
    """
    summary: dict[str, dict[str, float | None]] = {}
    for impl, values in times.items():
        quartiles = statistics.quantiles(values, n=4)
        summary[impl] = {"median": statistics.median(values), "iqr": quartiles[2] - quartiles[0]}
        if impl == ours:
            summary[impl].update(ratio=None, ratio_q1=None, ratio_q3=None)
            continue
        ratios = [t / o for o, t in zip(times[ours], values, strict=True)]
        ratio_quartiles = statistics.quantiles(ratios, n=4)
        summary[impl].update(ratio=statistics.median(ratios), ratio_q1=ratio_quartiles[0], ratio_q3=ratio_quartiles[2])
    return summary


def cpu_name() -> str:
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(args: argparse.Namespace, versions: Mapping[str, str]) -> dict:
    """The library ``versions``, Python, the CPU, torch's thread count, the load average now and the arguments.

    Call it after ``torch.set_num_threads``, just before the timing starts; :func:`finish_environment` adds the load
    average and the wall time at the end.
    """
    env = {
        **versions,
        "python": platform.python_version(),
        "device": cpu_name(),
        "cpu_threads": torch.get_num_threads(),
        "load_average_before": os.getloadavg()[0],
    }
    env["arguments"] = {key: str(value) for key, value in vars(args).items()}
    return env


def finish_environment(env: dict, start: float) -> None:
    """Add the load average now and the wall time since ``start`` (a ``time.perf_counter()``) to ``env``."""
    env["load_average_after"] = os.getloadavg()[0]
    env["wall_time_s"] = time.perf_counter() - start


def describe_environment(env: dict, libraries: list[str]) -> str:
    """One line for the top of a table: versions of ``libraries`` (keys of ``env``), machine, threads, load, time."""
    versions = ", ".join(f"{library} {env[library]}" for library in libraries)
    return (
        f"{versions}, python {env['python']}; {env['device']}, {env['cpu_threads']} CPU threads; load average "
        f"{env['load_average_before']:.2f} before, {env['load_average_after']:.2f} after; wall time "
        f"{env['wall_time_s']:.0f} s"
    )


def progress_bar(console: Console) -> Progress:
    """A rich progress bar with a description, the bar, done/total and the elapsed time of each task."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=console)


def run_with_progress(
    console: Console,
    jobs: list[tuple[str, Callable[[Callable[[int], None]], list[dict]]]],
    warmup: int,
    repeats: int,
) -> list[dict]:
    """Run each ``(description, benchmark)`` job under one progress bar and return all their rows.

    A job's ``benchmark(on_round)`` must call ``on_round(index)`` after each of its ``warmup + repeats`` rounds (as
    :func:`time_alternating` does); its task shows "warm-up" or "timing", and an overall task counts every round.
    """
    rows: list[dict] = []
    rounds = warmup + repeats
    with progress_bar(console) as progress:
        overall = progress.add_task("all pairs", total=len(jobs) * rounds)
        for description, benchmark in jobs:
            current = progress.add_task(f"{description}: building", total=rounds)

            def on_round(index: int, current=current, description=description) -> None:
                phase = "warm-up" if index < warmup else "timing"
                progress.update(current, advance=1, description=f"{description}: {phase}")
                progress.advance(overall)

            rows += benchmark(on_round)
            progress.remove_task(current)
    return rows


def parameter_count(model: nn.Module) -> int:
    """Trained parameters, each shared tensor once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def steps_per_call(steps: Mapping[str, Callable[[], None]], min_call_s: float) -> int:
    """How many steps make the fastest side's call last ``min_call_s``; each step runs once first (allocations)."""
    fastest = math.inf
    for step in steps.values():
        step()
        start = time.perf_counter()
        step()
        fastest = min(fastest, time.perf_counter() - start)
    return max(1, math.ceil(min_call_s / fastest))


def repeated(step: Callable[[], None], count: int) -> Callable[[], None]:
    def call() -> None:
        for _ in range(count):
            step()

    return call


def check_outputs(outputs: Mapping[str, torch.Tensor], ours: str, tolerance: float) -> float:
    """Largest difference between our output and each reference's, relative to the reference's largest entry (floored,
    so that all-zero outputs cannot pass as 0/0); raises above ``tolerance``: timing different functions is
    meaningless."""
    worst = 0.0
    for impl, reference in outputs.items():
        if impl == ours:
            continue
        difference = ((outputs[ours] - reference).abs().max() / reference.abs().max().clamp_min(1e-6)).item()
        if difference > tolerance:
            raise RuntimeError(f"ours and {impl} differ by {difference:.2e} (relative): not the same function")
        worst = max(worst, difference)
    return worst


def time_steps(
    steps: Mapping[str, Callable[[], None]], args: argparse.Namespace, on_round: Callable[[int], None] | None = None
) -> tuple[dict[str, list[float]], int]:
    """Per-step times of each side, alternating (the options of :func:`add_alternating_arguments`): enough steps a
    call to last ``--min-call-ms``, ``--repeats`` timed rounds after ``--warmup``. Returns the times and the steps a
    call."""
    count = steps_per_call(steps, args.min_call_ms / 1e3)
    calls = {impl: repeated(step, count) for impl, step in steps.items()}
    times = time_alternating(calls, args.repeats, args.warmup, on_round=on_round)
    return {impl: [t / count for t in values] for impl, values in times.items()}, count


def pair_fields(
    times: dict[str, list[float]], ours: str, reference: str, control: str | None = None
) -> dict[str, float | None]:
    """The row fields every alternating benchmark reports for one (ours, reference) pair: medians and IQRs per step,
    the paired ratio ``t_reference / t_ours`` with its quartiles and, with a ``control`` (a second copy of the
    reference, so its distance from 1.0 is noise), the A/A ratio ``t_control / t_reference``."""
    stats = summarize(times, ours)
    fields = {
        "ours_median_step_s": stats[ours]["median"],
        "ours_iqr_step_s": stats[ours]["iqr"],
        "reference_median_step_s": stats[reference]["median"],
        "reference_iqr_step_s": stats[reference]["iqr"],
        "ours_over_reference": stats[reference]["ratio"],
        "ratio_q1": stats[reference]["ratio_q1"],
        "ratio_q3": stats[reference]["ratio_q3"],
    }
    if control is not None:
        aa = summarize({reference: times[reference], control: times[control]}, reference)[control]
        fields.update(
            control_over_reference=aa["ratio"], control_ratio_q1=aa["ratio_q1"], control_ratio_q3=aa["ratio_q3"]
        )
    return fields


def add_alternating_arguments(parser: argparse.ArgumentParser, repeats: int, warmup: int, reference: str) -> None:
    """The options of an alternating ours-vs-reference benchmark: ``--repeats``, ``--warmup``, ``--min-call-ms``,
    ``--threads`` and ``--control`` (an A/A copy of the ``reference`` implementation)."""
    parser.add_argument(
        "--repeats", type=int, default=repeats, help="timed calls per implementation, alternating (>= 2)"
    )
    parser.add_argument(
        "--warmup", type=int, default=warmup, help="untimed rounds of calls before the timed ones (>= 1)"
    )
    parser.add_argument(
        "--min-call-ms",
        type=float,
        default=100.0,
        help="a timed call repeats the step until it takes about this long (the count is calibrated once, on the "
        "fastest side, before the warm-up), so that short steps are not lost in the timer's and the machine's jitter; "
        "the step time is the call's divided by the count",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for torch (torch.set_num_threads); 0 keeps torch's choice, one per core. One by default: "
        "on a machine shared with other jobs a parallel region waits for its slowest thread",
    )
    parser.add_argument(
        "--control",
        action="store_true",
        help=f"also time a second copy of each pair's {reference} reference, and report its ratio against the first "
        "(an A/A test): the noise floor of the ratios on this machine",
    )


def run_and_report(
    args: argparse.Namespace,
    versions: Mapping[str, str],
    jobs: list[tuple[str, Callable[[Callable[[int], None]], list[dict]]]],
    render: Callable[[Console, dict, list[dict]], None],
    width: int,
    extra_environment: Mapping[str, object] | None = None,
) -> None:
    """What every alternating benchmark's ``main`` does once its jobs are built: record the environment (plus
    ``extra_environment``), run the jobs under one progress bar (:func:`run_with_progress`), ``render`` the rows on a
    console at least ``width`` columns wide, and write the environment and rows to ``args.json`` when given."""
    env = {**environment(args, versions), **(extra_environment or {})}
    start = time.perf_counter()
    console = Console(width=max(Console().width, width))
    rows = run_with_progress(console, jobs, args.warmup, args.repeats)
    finish_environment(env, start)
    render(console, env, rows)
    if args.json:
        args.json.write_text(json.dumps({"environment": env, "results": rows}, indent=2) + "\n")
