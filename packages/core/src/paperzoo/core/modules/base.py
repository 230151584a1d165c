"""The LightningModule every paperzoo module extends: injected optimiser and schedule, exact resumption."""

from __future__ import annotations

import inspect
import random
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable


def _default_optimizer(params) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-4)


def _numpy_state_to_safe(state: tuple) -> tuple:
    name, keys, pos, has_gauss, cached = state
    return name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)


def _unset_argument(factory, name: str) -> bool:
    """Whether ``factory`` takes ``name`` and leaves it at None (jsonargparse hands over a partial)."""
    keywords = getattr(factory, "keywords", None)
    if keywords is not None and name in keywords:
        return keywords[name] is None
    params = inspect.signature(factory).parameters
    return name in params and params[name].default is None


class PaperzooModule(L.LightningModule):
    """Base LightningModule: the optimiser and LR schedule are callables injected from the config.

    In YAML (the LightningCLI ``class_path`` form)::

        optimizer:
          class_path: torch.optim.SGD
          init_args: {lr: 0.1, momentum: 0.9, weight_decay: 1.0e-4}
        lr_scheduler:
          class_path: torch.optim.lr_scheduler.MultiStepLR
          init_args: {milestones: [32000, 48000], gamma: 0.1}
        scheduler_interval: step

    A schedule that takes ``total_steps`` (``OneCycleLR``) and leaves it unset gets
    ``trainer.estimated_stepping_batches``, so one config works for any dataset size or epoch count. A schedule
    with a ``monitor`` (``lightning.pytorch.cli.ReduceLROnPlateau``) steps on that logged metric.

    The module also saves and restores the Python, NumPy and torch RNG states in its checkpoints, so a
    resumed run draws the same random numbers (dropout, initialisation of late layers) as one that ran
    straight through.

    Args:
        optimizer: builds the optimiser from the parameters; default SGD(lr=0.1, momentum=0.9, wd=1e-4).
        lr_scheduler: builds the LR scheduler from the optimiser; ``None`` for a constant LR.
        scheduler_interval: step the scheduler every optimiser ``"step"`` or every ``"epoch"``.
    """

    def __init__(
        self,
        optimizer: OptimizerCallable = _default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
    ) -> None:
        super().__init__()
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        self.scheduler_interval = scheduler_interval

    def optimizer_parameters(self) -> Any:
        """What the optimiser is built from: all parameters by default. A module that freezes some (a LoRA or
        linear-probe fine-tune) or puts some in groups with their own settings (no weight decay on biases and norms)
        overrides it and returns an iterable of parameters or of parameter-group dicts."""
        return self.parameters()

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.optimizer_parameters())
        if self.lr_scheduler_factory is None:
            return optimizer
        kwargs = {}
        if _unset_argument(self.lr_scheduler_factory, "total_steps"):
            kwargs["total_steps"] = int(self.trainer.estimated_stepping_batches)
        scheduler = self.lr_scheduler_factory(optimizer, **kwargs)
        config = {"scheduler": scheduler, "interval": self.scheduler_interval}
        # A schedule driven by a logged metric (lightning.pytorch.cli.ReduceLROnPlateau) names it as ``monitor``.
        if getattr(scheduler, "monitor", None):
            config["monitor"] = scheduler.monitor
        return {"optimizer": optimizer, "lr_scheduler": config}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rng_states"] = {
            "python": random.getstate(),
            # NumPy's key array as a tensor: checkpoints are read back with weights_only=True.
            "numpy": _numpy_state_to_safe(np.random.get_state()),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        states = checkpoint.get("rng_states")
        if not states:
            return
        random.setstate(states["python"])
        name, keys, pos, has_gauss, cached = states["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(states["torch"])
        if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states["cuda"])
