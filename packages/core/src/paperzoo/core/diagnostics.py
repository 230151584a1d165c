"""Training diagnostics: the flow of gradients and activations through a network's layers.

:class:`GradientFlow` measures what Glorot & Bengio (2010, "Understanding the difficulty of training deep
feedforward neural networks") plotted by hand: how the gradient norm and the activation statistics change
from the input layer to the output layer, the picture that shows vanishing and exploding gradients
(Hochreiter 1991; Bengio et al. 1994) and dead ReLUs.

:class:`DecisionBoundary` draws what a classifier of two-dimensional inputs has learnt: its decision regions
over the training points, the picture that shows a perceptron's single line failing on XOR.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from paperzoo.core import nn as pz_nn
from paperzoo.core.errors import ConfigError


def is_weight_layer(module: nn.Module) -> bool:
    """Whether ``module`` owns a weight matrix or kernel (Linear, Conv, and paperzoo's from-scratch twins alike).

    Decided by the parameter rather than a list of classes, so every weight layer is measured, including
    ones written after this callback; norm layers (1-D weights) are not.
    """
    weight = getattr(module, "weight", None)
    return isinstance(weight, nn.Parameter) and weight.dim() >= 2


# Elementwise activations whose outputs are measured too: a dead ReLU shows as a zero fraction near 1.
ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardtanh,
    nn.Hardsigmoid,
    nn.Hardswish,
    nn.Softplus,
    nn.Softsign,
    pz_nn.ReLU,
    pz_nn.LeakyReLU,
    pz_nn.GELU,
    pz_nn.Sigmoid,
    pz_nn.Tanh,
)


class GradientFlowWarning(UserWarning):
    """A layer's gradient norm left the range set by ``vanish_threshold`` and ``explode_threshold``."""


class GradientFlow(Callback):
    """Per-layer gradient norms and activation statistics, sampled during training (Glorot & Bengio 2010).

    On each sampled step it records, for every Linear/Conv layer (named by its module path, e.g.
    ``net.0``), the L2 norm of the weight's gradient, and for every Linear/Conv layer and elementwise
    activation module the mean, standard deviation and fraction of exact zeros of its output. The gradient
    norms are logged as ``grad_norm/<layer>``; everything is kept in :attr:`history` and, when training
    ends, drawn in ``gradient_flow.png`` and ``activations.png`` and saved in ``gradient_flow.json``.

    The sampled steps are the first one (initialisation problems show before any update hides them) and
    every ``every_n_steps``-th optimizer step after it, i.e. ``global_step`` 0, n-1, 2n-1, ...: Lightning
    writes step metrics on the same schedule for ``log_every_n_steps``, so with ``every_n_steps`` a
    multiple of it, every sample reaches the loggers. Off those steps the forward hooks return at once.

    Args:
        every_n_steps: sample every this many optimizer steps.
        plot_dir: where to write the PNGs and the JSON; default the trainer's ``log_dir``.
        vanish_threshold: warn (once per layer) when a layer's gradient norm falls below this.
        explode_threshold: warn (once per layer) when a layer's gradient norm rises above this, or is not finite.
        histograms: with a :class:`~lightning.pytorch.loggers.WandbLogger`, also log each layer's gradient as
            a ``wandb.Histogram`` on the sampled steps.

    Attributes:
        history: ``{step: {layer: {"grad_norm": ..., "act_mean": ..., "act_std": ..., "act_zero_frac": ...}}}``,
            the layers in forward order (input to output); activation modules have no ``grad_norm``.
    """

    def __init__(
        self,
        every_n_steps: int = 50,
        plot_dir: str | None = None,
        vanish_threshold: float = 1e-7,
        explode_threshold: float = 1e3,
        histograms: bool = True,
    ) -> None:
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be at least 1, got {every_n_steps}")
        if not 0 <= vanish_threshold < explode_threshold:
            raise ValueError(
                f"need 0 <= vanish_threshold < explode_threshold, got {vanish_threshold} and {explode_threshold}"
            )
        self.every_n_steps = every_n_steps
        self.plot_dir = plot_dir
        self.vanish_threshold = vanish_threshold
        self.explode_threshold = explode_threshold
        self.histograms = histograms
        self.history: dict[int, dict[str, dict[str, float]]] = {}
        self._handles: list[RemovableHandle] = []
        self._sampling = False
        self._step = -1
        # Running (count, mean, M2, zeros) per layer for the sampled step; a layer called twice is merged.
        self._moments: dict[str, tuple[int, Tensor, Tensor, Tensor]] = {}
        self._warned: set[tuple[str, str]] = set()

    def is_sampled(self, step: int) -> bool:
        """Whether the optimizer step with this ``global_step`` is sampled."""
        return step == 0 or (step + 1) % self.every_n_steps == 0

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._remove_hooks()
        for name, module in pl_module.named_modules():
            if is_weight_layer(module) or isinstance(module, ACTIVATIONS):
                self._handles.append(module.register_forward_hook(self._activation_hook(name)))

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        self._sampling = self.is_sampled(step)
        # Accumulated micro-batches share one global_step: their activations are pooled into one sample.
        if self._sampling and step != self._step:
            self._moments = {}
            self._step = step

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        # Validation forwards between training batches must not be counted.
        self._sampling = False

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        # Here the gradients are complete (accumulated, and unscaled under mixed precision) and not yet applied.
        if not self._sampling:
            return
        grads = {
            name: module.weight.grad
            for name, module in pl_module.named_modules()
            if is_weight_layer(module) and module.weight.grad is not None
        }
        stats: dict[str, dict[str, float]] = {name: {} for name in self._moments}  # forward order
        stats.update({name: {} for name in grads if name not in stats})
        for name, grad in grads.items():
            stats[name]["grad_norm"] = torch.linalg.vector_norm(grad.detach(), dtype=torch.float32).item()
        for name, (count, mean, m2, zeros) in self._moments.items():
            mean_value, m2_value, zeros_value = torch.stack([mean, m2, zeros]).tolist()
            stats[name].update(
                act_mean=mean_value, act_std=math.sqrt(max(m2_value, 0.0) / count), act_zero_frac=zeros_value / count
            )
        self.history[self._step] = stats
        norms = {name: layer["grad_norm"] for name, layer in stats.items() if "grad_norm" in layer}
        if not norms:
            return
        pl_module.log_dict({f"grad_norm/{name}": norm for name, norm in norms.items()}, on_step=True, on_epoch=False)
        self._warn(norms, self._step)
        if self.histograms:
            self._log_histograms(trainer, grads, self._step)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # trainer.log_dir broadcasts under DDP, so every rank asks before rank 0 alone writes.
        out_dir = Path(self.plot_dir or trainer.log_dir or trainer.default_root_dir)
        if not trainer.is_global_zero or not self.history:
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        record = {
            "every_n_steps": self.every_n_steps,
            "vanish_threshold": self.vanish_threshold,
            "explode_threshold": self.explode_threshold,
            "history": {str(step): layers for step, layers in self.history.items()},
        }
        (out_dir / "gradient_flow.json").write_text(json.dumps(record, indent=2) + "\n")
        images = {
            "gradient_flow": plot_gradient_flow(
                self.history, out_dir / "gradient_flow.png", (self.vanish_threshold, self.explode_threshold)
            ),
            "activations": plot_activations(self.history, out_dir / "activations.png"),
        }
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                for key, path in images.items():
                    logger.log_image(key=f"diagnostics/{key}", images=[str(path)], step=trainer.global_step)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._remove_hooks()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._remove_hooks()

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._sampling = False

    def _activation_hook(self, name: str) -> Callable[[nn.Module, Any, Any], None]:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            if not self._sampling or not isinstance(output, Tensor) or output.numel() == 0:
                return
            out = output.detach().float()
            var, mean = torch.var_mean(out, correction=0)
            count = out.numel()
            moments = (count, mean, var * count, (out == 0).sum().float())
            if name in self._moments:
                moments = _merge_moments(self._moments[name], moments)
            self._moments[name] = moments

        return hook

    def _warn(self, norms: dict[str, float], step: int) -> None:
        first, last = next(iter(norms)), next(reversed(norms))
        ratio = norms[first] / norms[last] if norms[last] > 0 else math.inf
        offenders: dict[str, list[str]] = {"vanishing": [], "exploding": []}
        for name, norm in norms.items():
            if norm < self.vanish_threshold:
                kind = "vanishing"
            elif norm > self.explode_threshold or not math.isfinite(norm):
                kind = "exploding"
            else:
                continue
            if (name, kind) not in self._warned:
                self._warned.add((name, kind))
                offenders[kind].append(f"'{name}' ({norm:.3g})")
        bounds = {
            "vanishing": f"below vanish_threshold={self.vanish_threshold:g}",
            "exploding": f"above explode_threshold={self.explode_threshold:g}",
        }
        for kind, layers in offenders.items():
            # One warning per step and kind, naming every layer not reported before, so a deep net is one line.
            if layers:
                rank_zero_warn(
                    f"{kind} gradient at step {step}: weight-gradient norm {bounds[kind]} in layer "
                    f"{', '.join(layers)}; the first/last layer gradient-norm ratio ('{first}' / '{last}') is "
                    f"{ratio:.3g}",
                    category=GradientFlowWarning,
                )

    def _log_histograms(self, trainer: L.Trainer, grads: dict[str, Tensor], step: int) -> None:
        loggers = [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]
        if not loggers or not trainer.is_global_zero:
            return
        # A WandbLogger cannot exist without wandb, so the import is safe here and avoided everywhere else.
        import wandb

        histograms = {
            f"grad_hist/{name}": wandb.Histogram(grad.detach().float().flatten().cpu().numpy())
            for name, grad in grads.items()
        }
        for logger in loggers:
            logger.log_metrics(histograms, step=step)


def _merge_moments(
    a: tuple[int, Tensor, Tensor, Tensor], b: tuple[int, Tensor, Tensor, Tensor]
) -> tuple[int, Tensor, Tensor, Tensor]:
    """Pool two (count, mean, M2, zeros) summaries (Chan et al. 1979), without E[x^2] - E[x]^2 cancellation."""
    count_a, mean_a, m2_a, zeros_a = a
    count_b, mean_b, m2_b, zeros_b = b
    count = count_a + count_b
    delta = mean_b - mean_a
    return (
        count,
        mean_a + delta * (count_b / count),
        m2_a + m2_b + delta**2 * (count_a * count_b / count),
        zeros_a + zeros_b,
    )


def _plotted_steps(history: dict[int, Any]) -> list[int]:
    """All sampled steps when they are few, else the first, the middle and the last."""
    steps = sorted(history)
    return steps if len(steps) <= 3 else [steps[0], steps[len(steps) // 2], steps[-1]]


def _layer_order(history: dict[int, dict[str, dict[str, float]]], key: str) -> list[str]:
    """Layers that have ``key``, input to output, over all sampled steps."""
    order: dict[str, None] = {}
    for step in sorted(history):
        order.update({name: None for name, stats in history[step].items() if key in stats})
    return list(order)


def _figure(n_layers: int, rows: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, 1, figsize=(max(6.0, 0.3 * n_layers + 2.0), 3.6 * rows), squeeze=False)
    return plt, fig, axes[:, 0]


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_gradient_flow(
    history: dict[int, dict[str, dict[str, float]]], path: str | Path, thresholds: tuple[float, float] | None = None
) -> Path:
    """Per-layer weight-gradient norm on a log axis, input layer on the left, one line per plotted step.

    Args:
        history: :attr:`GradientFlow.history`.
        path: the PNG to write.
        thresholds: ``(vanish, explode)`` norms drawn as dashed lines.
    """
    layers = _layer_order(history, "grad_norm")
    plt, fig, (ax,) = _figure(len(layers), 1)
    steps = _plotted_steps(history)
    series = {step: [history[step].get(name, {}).get("grad_norm", math.nan) for name in layers] for step in steps}
    positive = [norm for norms in series.values() for norm in norms if norm > 0 and math.isfinite(norm)]
    # A log axis drops zeros, yet an underflowed gradient is the worst case: draw it at a floor, marked apart.
    floor = min(positive, default=1.0) / 10
    underflow_labelled = False
    for step, norms in series.items():
        (line,) = ax.plot(
            range(len(layers)), [floor if n == 0 else n for n in norms], marker="o", markersize=3, label=f"step {step}"
        )
        zeros = [i for i, n in enumerate(norms) if n == 0]
        if zeros:
            label = None if underflow_labelled else "exactly 0 (drawn at the bottom)"
            ax.plot(zeros, [floor] * len(zeros), "v", color=line.get_color(), markersize=7, label=label)
            underflow_labelled = True
    if thresholds is not None:
        for value, label, color in zip(thresholds, ("vanishing", "exploding"), ("tab:purple", "tab:red"), strict=True):
            ax.axhline(value, color=color, linestyle="--", linewidth=1, label=f"{label} threshold")
    ax.set_yscale("log")
    ax.set_xticks(range(len(layers)), layers, rotation=90, fontsize=7)
    ax.set_xlabel("layer (input -> output)")
    ax.set_ylabel("weight-gradient L2 norm")
    ax.set_title("gradient flow")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(plt, fig, Path(path))


def plot_activations(history: dict[int, dict[str, dict[str, float]]], path: str | Path) -> Path:
    """Per-layer activation standard deviation (log axis) and fraction of exact zeros, one line per plotted step.

    Args:
        history: :attr:`GradientFlow.history`.
        path: the PNG to write.
    """
    layers = _layer_order(history, "act_std")
    plt, fig, (ax_std, ax_zero) = _figure(len(layers), 2)
    for step in _plotted_steps(history):
        stats = [history[step].get(name, {}) for name in layers]
        ax_std.plot([s.get("act_std", math.nan) for s in stats], marker="o", markersize=3, label=f"step {step}")
        ax_zero.plot([s.get("act_zero_frac", math.nan) for s in stats], marker="o", markersize=3, label=f"step {step}")
    ax_std.set_yscale("log")
    ax_std.set_ylabel("activation std")
    ax_std.set_title("activations")
    ax_zero.set_ylim(-0.02, 1.02)
    ax_zero.set_ylabel("fraction of zeros")
    ax_zero.set_xlabel("layer (input -> output)")
    for ax in (ax_std, ax_zero):
        ax.set_xticks(range(len(layers)), layers, rotation=90, fontsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(plt, fig, Path(path))


class DecisionBoundary(Callback):
    """Draw a classifier's decision regions over its two-dimensional training points, to ``decision_boundary.png``.

    The model is evaluated on a grid covering the training points (plus ``margin``): a model that returns one
    score per example predicts class 1 where the score is >= 0 (a perceptron); one that returns a row of logits
    predicts their argmax. A panel is drawn after each epoch in ``epochs`` (0-based) and one for the final
    weights, side by side; with a :class:`~lightning.pytorch.loggers.WandbLogger` the figure is logged as an image.

    Args:
        epochs: the epochs after which to take a snapshot, besides the end of training.
        resolution: grid points along each axis.
        margin: how far the grid extends beyond the training points, in input units.
        plot_dir: where to write the PNG; default the trainer's ``log_dir``.
    """

    def __init__(
        self, epochs: list[int] | None = None, resolution: int = 200, margin: float = 0.5, plot_dir: str | None = None
    ) -> None:
        self.epochs = sorted(set(epochs or []))
        self.resolution = resolution
        self.margin = margin
        self.plot_dir = plot_dir
        self.snapshots: list[tuple[str, Tensor, float]] = []
        self._points: tuple[Tensor, Tensor] | None = None
        self._grid: tuple[Tensor, Tensor] | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        datamodule = trainer.datamodule
        if datamodule is None:
            raise ConfigError("DecisionBoundary needs a datamodule whose training inputs are 2-D points")
        xs, ys = zip(*((x, y) for x, y in datamodule.train_dataloader()), strict=True)
        x, y = torch.cat(xs).flatten(1).float().cpu(), torch.cat(ys).cpu()
        if x.shape[1] != 2:
            raise ConfigError(f"DecisionBoundary draws 2-D inputs, but the training inputs have {x.shape[1]} features")
        self._points = (x, y)
        low, high = x.min(0).values - self.margin, x.max(0).values + self.margin
        axes = [torch.linspace(float(low[i]), float(high[i]), self.resolution) for i in range(2)]
        self._grid = torch.meshgrid(*axes, indexing="xy")  # two (resolution, resolution) coordinate maps
        self.snapshots = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch in self.epochs:
            self.snapshots.append(self.snapshot(pl_module, f"after epoch {trainer.current_epoch + 1}"))

    def snapshot(self, pl_module: nn.Module, title: str) -> tuple[str, Tensor, float]:
        """``(title, predicted class at every grid point, training accuracy)`` for the model as it is now."""
        gx, gy = self._grid
        grid_points = torch.stack([gx.flatten(), gy.flatten()], dim=1)  # (resolution^2, 2)
        x, y = self._points
        classes = classify(pl_module, torch.cat([grid_points, x]))
        accuracy = classes[len(grid_points) :].eq(y).float().mean().item()
        return title, classes[: len(grid_points)].reshape(gx.shape), accuracy

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        out_dir = Path(self.plot_dir or trainer.log_dir or trainer.default_root_dir)
        if not trainer.is_global_zero or self._points is None:
            return
        self.snapshots.append(self.snapshot(pl_module, f"end of training ({trainer.current_epoch} epochs)"))
        out_dir.mkdir(parents=True, exist_ok=True)
        path = plot_decision_boundaries(self._points, self._grid, self.snapshots, out_dir / "decision_boundary.png")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key="diagnostics/decision_boundary", images=[str(path)], step=trainer.global_step)


def classify(model: nn.Module, x: Tensor) -> Tensor:
    """Class predictions in eval mode: ``score >= 0`` for one score per row, the argmax of a row of logits."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            device = next(model.parameters()).device
            out = model(x.to(device)).cpu()
    finally:
        model.train(was_training)
    return (out.reshape(-1) >= 0).long() if out.ndim == 1 or out.shape[1] == 1 else out.argmax(dim=1)


def plot_decision_boundaries(
    points: tuple[Tensor, Tensor], grid: tuple[Tensor, Tensor], panels: list[tuple[str, Tensor, float]], path: Path
) -> Path:
    """Draw each ``(title, predicted classes on the grid, training accuracy)`` panel over the labelled points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    x, y = points
    gx, gy = grid
    n_classes = int(max(y.max().item(), *(int(c.max()) for _, c, _ in panels)) + 1)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"][:n_classes]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.8), squeeze=False)
    for ax, (title, classes, accuracy) in zip(axes[0], panels, strict=True):
        ax.contourf(gx, gy, classes, levels=np.arange(n_classes + 1) - 0.5, cmap=ListedColormap(colours), alpha=0.25)
        ax.contour(gx, gy, classes, levels=np.arange(n_classes - 1) + 0.5, colors="k", linewidths=1)
        for c in range(n_classes):
            chosen = y == c
            ax.scatter(
                x[chosen, 0], x[chosen, 1], s=10, color=colours[c], edgecolors="k", linewidths=0.3, label=f"class {c}"
            )
        ax.set_title(f"{title}\ntraining accuracy {100 * accuracy:.1f}%", fontsize=9)
        ax.set_aspect("equal")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
