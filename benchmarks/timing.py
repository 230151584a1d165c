"""What every benchmark here shares: alternating timing, paired statistics and the machine's name."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path


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
