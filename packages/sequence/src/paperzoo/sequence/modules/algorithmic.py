"""Algorithmic tasks (copy, repeat copy, associative recall): a sigmoid cross-entropy on the output period, costs in
bits per sequence as in the Neural Turing Machine paper, and length generalisation measured on longer test sets."""

from __future__ import annotations

import csv
import inspect
import math
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError
from paperzoo.core.modules.base import PaperzooModule, _default_optimizer

Batch = tuple[Tensor, Tensor, Tensor]
_LN2 = math.log(2.0)


def sequence_costs(logits: Tensor, targets: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Per-sequence costs on the output period (``mask`` 1), summed over its steps and channels.

    Returns:
        ``(bits, errors)``, each :math:`(B)`: the binary cross-entropy in bits (the NTM paper's "cost per sequence")
        and the number of wrong bits after thresholding the sigmoid at 0.5.
    """
    weight = mask.unsqueeze(-1)  # (B, T, 1)
    nats = F.binary_cross_entropy_with_logits(logits, targets, reduction="none") * weight  # (B, T, O)
    wrong = ((logits > 0) != (targets > 0.5)).to(logits.dtype) * weight  # (B, T, O)
    return nats.sum((1, 2)) / _LN2, wrong.sum((1, 2))


class AlgorithmicTaskModule(PaperzooModule):
    """Training and testing on the algorithmic tasks of Graves, Wayne & Danihelka 2014 ("Neural Turing Machines"),
    for any network mapping ``(B, T, I)`` inputs to ``(B, T, O)`` logits (NTM, DNC, LSTM).

    Batches are ``(inputs, targets, mask)`` as :class:`~paperzoo.sequence.data.AlgorithmicDataModule` serves them.
    The loss is the sigmoid binary cross-entropy of the output period (``mask`` 1), averaged over its bits, so its
    scale does not grow with the length. Logged:

    - ``train/loss``, ``train/bits_per_sequence`` (every step) and ``val/loss``, ``val/bits_per_sequence``,
      ``val/bit_error`` (per validation): the cost per sequence in bits (the paper's learning curves) and the mean
      number of wrong bits per sequence after thresholding at 0.5;
    - at test, for every test set ``{name}`` (``len40``, say): ``test/bit_error_{name}``,
      ``test/bits_per_sequence_{name}`` and ``test/perfect_{name}``, the fraction of sequences with no wrong bit.

    At the end of a test with ``write_plots`` the run directory gets ``length_generalisation.csv`` and ``.png`` (the
    errors against the test length), ``learning_curve.png`` (from the run's ``metrics.csv``, when there is one) and,
    for a network whose ``forward`` takes ``return_weightings`` (NTM, DNC), ``memory_access_{name}.png``: the inputs,
    targets, outputs and the heads' write and read weightings over time of the first sequence of each test set in
    ``access_plot_sets``. The per-length test totals are summed in this process: test on one device.

    Args:
        network: maps ``(B, T, I)`` to ``(B, T, O)`` logits; its ``input_size`` and ``output_size``, where it has them,
            are checked against the data's.
        write_plots: write the CSV and the figures after a test.
        access_plot_sets: the test sets whose first sequence gets a memory-access figure; ``None`` for the first.
        optimizer: see :class:`~paperzoo.core.modules.PaperzooModule`.
        lr_scheduler: see :class:`~paperzoo.core.modules.PaperzooModule`.
        scheduler_interval: see :class:`~paperzoo.core.modules.PaperzooModule`.
    """

    def __init__(
        self,
        network: nn.Module,
        write_plots: bool = True,
        access_plot_sets: list[str] | None = None,
        optimizer: OptimizerCallable = _default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler, scheduler_interval=scheduler_interval)
        self.save_hyperparameters(ignore=["network", "optimizer", "lr_scheduler"])
        self.network = network
        self.write_plots = write_plots
        self.access_plot_sets = access_plot_sets
        self._test_totals: dict[int, list[float]] = {}
        self._test_examples: dict[int, Batch] = {}

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        for size in ("input_size", "output_size"):
            ours, theirs = getattr(self.network, size, None), getattr(datamodule, size, None)
            if ours is not None and theirs is not None and ours != theirs:
                raise ConfigError(
                    f"the network's {size} is {ours} but the data's is {theirs}; set "
                    f"model.init_args.network.init_args.{size} to {theirs}"
                )
        names = getattr(datamodule, "test_names", None)
        unknown = [n for n in self.access_plot_sets or [] if names is not None and n not in names]
        if unknown:
            raise ConfigError(
                f"access_plot_sets names {', '.join(unknown)}, which the data does not test; its test sets are "
                f"{', '.join(names)}"
            )

    def forward(self, inputs: Tensor) -> Tensor:
        return self.network(inputs)

    @staticmethod
    def loss(logits: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
        """The mean binary cross-entropy (nats) per output bit of the output period."""
        nats = F.binary_cross_entropy_with_logits(logits, targets, reduction="none") * mask.unsqueeze(-1)
        return nats.sum() / (mask.sum() * targets.size(-1)).clamp_min(1)

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        inputs, targets, mask = batch
        logits = self(inputs)
        loss = self.loss(logits, targets, mask)
        with torch.no_grad():
            bits, _ = sequence_costs(logits, targets, mask)
        batch_size = len(inputs)
        self.log("train/loss", loss, on_step=True, prog_bar=True, batch_size=batch_size)
        self.log("train/bits_per_sequence", bits.mean(), on_step=True, batch_size=batch_size)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        inputs, targets, mask = batch
        logits = self(inputs)
        bits, errors = sequence_costs(logits, targets, mask)
        batch_size = len(inputs)
        self.log("val/loss", self.loss(logits, targets, mask), on_epoch=True, batch_size=batch_size)
        self.log("val/bits_per_sequence", bits.mean(), on_epoch=True, prog_bar=True, batch_size=batch_size)
        self.log("val/bit_error", errors.mean(), on_epoch=True, batch_size=batch_size)

    def on_test_epoch_start(self) -> None:
        self._test_totals, self._test_examples = {}, {}

    def test_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        inputs, targets, mask = batch
        bits, errors = sequence_costs(self(inputs), targets, mask)
        totals = self._test_totals.setdefault(dataloader_idx, [0.0, 0.0, 0.0, 0.0])
        for i, value in enumerate((len(inputs), bits.sum(), errors.sum(), (errors == 0).sum())):
            totals[i] += float(value)
        if dataloader_idx not in self._test_examples:
            self._test_examples[dataloader_idx] = (inputs[:1], targets[:1], mask[:1])

    def _test_cases(self) -> list[tuple[str, int | None, int | None]]:
        """``(name, length, repeats)`` per test loader, from the data module when it has them."""
        cases = getattr(getattr(self.trainer, "datamodule", None), "test_cases", None)
        if cases is not None:
            return list(cases)
        return [(f"set{i}", None, None) for i in sorted(self._test_totals)]

    def on_test_epoch_end(self) -> None:
        rows = []
        for index, (name, length, repeats) in enumerate(self._test_cases()):
            if index not in self._test_totals:
                continue
            sequences, bits, errors, perfect = self._test_totals[index]
            row = {
                "name": name,
                "length": length,
                "repeats": repeats,
                "sequences": int(sequences),
                "bit_error": errors / sequences,
                "bits_per_sequence": bits / sequences,
                "perfect": perfect / sequences,
            }
            rows.append(row)
            for key in ("bit_error", "bits_per_sequence", "perfect"):
                self.log(f"test/{key}_{name}", row[key], add_dataloader_idx=False)
        log_dir = self.trainer.log_dir
        if not (self.write_plots and rows and self.trainer.is_global_zero and log_dir):
            return
        out = Path(log_dir)
        out.mkdir(parents=True, exist_ok=True)
        label = type(self.network).__name__
        write_length_csv(rows, out / "length_generalisation.csv")
        plot_length_generalisation(rows, out / "length_generalisation.png", label=label)
        if (out / "metrics.csv").is_file():
            plot_learning_curve(out / "metrics.csv", out / "learning_curve.png", label=label)
        if "return_weightings" in inspect.signature(self.network.forward).parameters:
            names = [case[0] for case in self._test_cases()]
            for name in self.access_plot_sets or names[:1]:
                index = names.index(name) if name in names else None
                if index in self._test_examples:
                    self._plot_access(self._test_examples[index], out / f"memory_access_{name}.png", name)

    @torch.no_grad()
    def _plot_access(self, example: Batch, path: Path, name: str) -> None:
        inputs, targets, mask = example
        logits, weightings = self.network(inputs, return_weightings=True)
        plot_memory_access(
            inputs[0].cpu(),
            targets[0].cpu(),
            torch.sigmoid(logits[0]).cpu(),
            mask[0].cpu(),
            weightings["write"][0].cpu(),
            weightings["read"][0].cpu(),
            path,
            title=f"{type(self.network).__name__}, test set {name}",
        )


LENGTH_COLUMNS = ("name", "length", "repeats", "sequences", "bit_error", "bits_per_sequence", "perfect")


def write_length_csv(rows: list[dict], path: str | Path) -> Path:
    """Write the per-test-set rows (:data:`LENGTH_COLUMNS`) as CSV."""
    path = Path(path)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=LENGTH_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else f"{v:.4f}" if isinstance(v, float) else v for k, v in row.items()})
    return path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_length_generalisation(rows: list[dict], path: str | Path, label: str = "model") -> Path:
    """Draw the wrong bits per sequence and the fraction of perfect sequences against the test length, one line per
    repeat count (one line for copy and recall)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    groups: dict[int | None, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["repeats"], []).append(row)
    for repeats, group in groups.items():
        group = [r for r in group if r["length"] is not None]
        name = label if repeats is None else f"{label}, {repeats} repeats"
        lengths = [r["length"] for r in group]
        axes[0].plot(lengths, [r["bit_error"] for r in group], "o-", label=name)
        axes[1].plot(lengths, [r["perfect"] for r in group], "o-", label=name)
    axes[0].set_ylabel("wrong bits per sequence")
    axes[1].set_ylabel("sequences without a wrong bit")
    axes[1].set_ylim(-0.03, 1.03)
    for ax in axes:
        ax.set_xlabel("test length")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _read_curve(metrics_csv: Path, key: str) -> tuple[list[int], list[float]]:
    steps, values = [], []
    with metrics_csv.open() as f:
        for row in csv.DictReader(f):
            if row.get(key) and row.get("step"):
                steps.append(int(row["step"]))
                values.append(float(row[key]))
    return steps, values


def _smooth(values: list[float], weight: float, log: bool) -> list[float]:
    """An exponential moving average with bias correction (so the first point is exact); of the logarithms when
    ``log``, so a cost that falls by orders of magnitude is not dragged up by its past for hundreds of steps."""
    out, average = [], 0.0
    for i, value in enumerate(values, start=1):
        average = weight * average + (1 - weight) * (math.log(value) if log else value)
        smoothed = average / (1 - weight**i)
        out.append(math.exp(smoothed) if log else smoothed)
    return out


def plot_learning_curve(metrics_csv: str | Path, path: str | Path, label: str = "model", smoothing: float = 0.9):
    """Draw the training cost in bits per sequence (faint as logged, solid smoothed) and the validation cost against
    the step, from a run's ``metrics.csv``; on a log axis when every cost is positive."""
    plt = _pyplot()
    metrics_csv = Path(metrics_csv)
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    steps, values = _read_curve(metrics_csv, "train/bits_per_sequence")
    val_steps, val_values = _read_curve(metrics_csv, "val/bits_per_sequence")
    log = min([*values, *val_values], default=0) > 0
    if values:
        ax.plot(steps, values, color="C0", alpha=0.2, linewidth=0.7)
        ax.plot(steps, _smooth(values, smoothing, log), color="C0", label=f"{label}, training (smoothed)")
    if val_values:
        ax.plot(val_steps, val_values, "o-", color="C1", markersize=3, label=f"{label}, validation")
    ax.set_xlabel("step")
    ax.set_ylabel("cost per sequence (bits)")
    if log:
        ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.legend(frameon=False)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_run_comparison(runs: dict[str, str | Path], path: str | Path, title: str | None = None) -> Path:
    """Draw several runs of one task side by side: their validation cost against the step, and their wrong bits per
    sequence against the test length (from each run directory's ``metrics.csv`` and ``length_generalisation.csv``).

    Args:
        runs: ``{label: run directory}``, e.g. ``{"NTM": "runs/ntm-copy/version_0", ...}``.
        path: the PNG to write.
        title: the figure's title.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.9))
    for label, run in runs.items():
        run = Path(run)
        steps, values = _read_curve(run / "metrics.csv", "val/bits_per_sequence")
        axes[0].plot(steps, values, "o-", markersize=3, label=label)
        with (run / "length_generalisation.csv").open() as f:
            rows = [r for r in csv.DictReader(f) if r["length"]]
        axes[1].plot([int(r["length"]) for r in rows], [float(r["bit_error"]) for r in rows], "o-", label=label)
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("validation cost per sequence (bits)")
    axes[0].set_yscale("log")
    axes[1].set_xlabel("test length")
    axes[1].set_ylabel("wrong bits per sequence")
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
        ax.legend(frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_memory_access(
    inputs: Tensor,
    targets: Tensor,
    outputs: Tensor,
    mask: Tensor,
    write_weights: Tensor,
    read_weights: Tensor,
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Draw one sequence as heatmaps over time: the inputs, the targets and outputs of the output period, and every
    head's write and read weightings over the memory rows (the NTM paper's figure 6).

    Args:
        inputs: :math:`(T, I)`.
        targets: :math:`(T, O)`.
        outputs: :math:`(T, O)`, the sigmoid of the logits.
        mask: :math:`(T)`, 1 on the output period.
        write_weights: :math:`(T, H_w, N)`.
        read_weights: :math:`(T, R, N)`.
        path: the PNG to write.
        title: the figure's title.
    """
    plt = _pyplot()
    keep = mask.unsqueeze(-1)
    panels = [("inputs", inputs), ("targets", targets * keep), ("outputs", outputs * keep)]
    panels += [(f"write head {h}", write_weights[:, h]) for h in range(write_weights.size(1))]
    panels += [(f"read head {h}", read_weights[:, h]) for h in range(read_weights.size(1))]
    heights = [1.0] * 3 + [3.0] * (len(panels) - 3)  # the memory panels: rows over time
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(9, 1.0 + 0.8 * sum(heights)), sharex=True, gridspec_kw={"height_ratios": heights}
    )
    for i, (ax, (name, values)) in enumerate(zip(axes, panels, strict=True)):
        ax.imshow(values.t().numpy(), aspect="auto", cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        rows = values.size(1)
        ax.set_yticks([0, rows - 1] if i >= 3 else [])
        ax.tick_params(axis="y", labelsize=7)
    axes[-1].set_xlabel("time step")
    axes[3].set_title("weightings over the memory rows (row 0 at the top)", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
