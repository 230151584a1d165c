"""Training curves from a run's ``metrics.csv``, as a PNG."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

from paperzoo.core.errors import PaperzooError


def read_epoch_metrics(metrics_csv: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Per-epoch series ``{key: [(epoch, value), ...]}`` of a CSVLogger file (step-level keys are skipped)."""
    path = Path(metrics_csv)
    if not path.is_file():
        raise PaperzooError(f"{path} does not exist; give a run directory written by paperzoo (runs/NAME/version_N)")
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    with path.open() as f:
        for row in csv.DictReader(f):
            epoch = row.get("epoch")
            if not epoch:
                continue
            for key, value in row.items():
                if key in ("epoch", "step") or not value or key.endswith("_step"):
                    continue
                series[key.removesuffix("_epoch")].append((int(epoch), float(value)))
    return dict(series)


def read_step_metrics(metrics_csv: str | Path, key: str) -> list[tuple[int, float]]:
    """The step-level series ``[(step, value), ...]`` of ``key`` (logged as ``<key>_step``, or as ``key`` alone)."""
    path = Path(metrics_csv)
    if not path.is_file():
        raise PaperzooError(f"{path} does not exist; give a run directory written by paperzoo (runs/NAME/version_N)")
    points = []
    with path.open() as f:
        for row in csv.DictReader(f):
            value = row.get(f"{key}_step") or (row.get(key) if not row.get("epoch") else None)
            if value and row.get("step"):
                points.append((int(row["step"]), float(value)))
    return points


def _smooth(values: list[float], weight: float) -> list[float]:
    """An exponential moving average with bias correction (TensorBoard's smoothing), so the first point is exact."""
    out, average = [], 0.0
    for i, value in enumerate(values, start=1):
        average = weight * average + (1 - weight) * value
        out.append(average / (1 - weight**i))
    return out


def plot_compare(
    runs: dict[str, str | Path], out: str | Path, title: str | None = None, smoothing: float = 0.9
) -> Path:
    """Draw several runs on shared axes: training loss against the step, validation loss and accuracy per epoch.

    The training loss is drawn faint as logged and solid after exponential smoothing (weight ``smoothing``); a run
    that logged no step-level loss shows its per-epoch one.

    Args:
        runs: ``{label: run directory}``, drawn in this order.
        out: the PNG to write.
        title: the figure's title.
        smoothing: the moving average's weight on the past, in [0, 1).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = {label: read_epoch_metrics(Path(d) / "metrics.csv") for label, d in runs.items()}
    steps = {label: read_step_metrics(Path(d) / "metrics.csv", "train/loss") for label, d in runs.items()}
    panels = [("train/loss", "training loss")]
    panels += [
        (k, n)
        for k, n in (("val/loss", "validation loss"), ("val/acc", "validation accuracy"))
        if any(k in series for series in epochs.values())
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.9), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (key, name) in zip(axes[0], panels, strict=True):
        for i, label in enumerate(runs):
            colour = colours[i % len(colours)]
            if key == "train/loss" and steps[label]:
                x, y = zip(*steps[label], strict=True)
                ax.plot(x, y, color=colour, alpha=0.2, linewidth=0.8)
                ax.plot(x, _smooth(list(y), smoothing), color=colour, label=label)
                ax.set_xlabel("step")
            elif key in epochs[label]:
                x, y = zip(*epochs[label][key], strict=True)
                ax.plot(x, y, color=colour, marker="o", markersize=3, label=label)
                ax.set_xlabel("epoch")
        drawn = [v for line in ax.get_lines() for v in line.get_ydata()]
        if key.endswith("loss") and drawn and min(drawn) > 0:  # a log axis would hide a loss of exactly 0
            ax.set_yscale("log")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_run(run_dir: str | Path, out: str | Path | None = None, title: str | None = None) -> Path:
    """Plot the losses and the accuracies of a run against the epoch; returns the PNG's path.

    Args:
        run_dir: the run directory (holding ``metrics.csv``).
        out: where to write the PNG; default ``<run_dir>/curves.png``.
        title: the figure's title; default the run directory's name.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    series = read_epoch_metrics(run_dir / "metrics.csv")
    groups = {"loss": [k for k in series if k.endswith("/loss")], "accuracy": [k for k in series if k.endswith("/acc")]}
    groups = {name: keys for name, keys in groups.items() if keys}
    if not groups:
        raise PaperzooError(f"{run_dir / 'metrics.csv'} has no per-epoch loss or accuracy to plot")
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 3.8), squeeze=False)
    for ax, (name, keys) in zip(axes[0], groups.items(), strict=True):
        for key in sorted(keys):
            epochs, values = zip(*series[key], strict=True)
            if key.startswith("test/"):  # one point: the tested checkpoint, logged after the last epoch
                ax.plot(epochs, values, marker="*", markersize=11, linestyle="none", label=f"{key} (tested checkpoint)")
            else:
                ax.plot(epochs, values, marker="o", markersize=3, label=key)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title or f"{run_dir.parent.name}/{run_dir.name}")
    fig.tight_layout()
    out = Path(out) if out is not None else run_dir / "curves.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
