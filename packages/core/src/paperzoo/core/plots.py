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
