"""Callbacks every paperzoo run carries (a non-finite-loss guard, the run's metadata record) and an EMA of weights."""

from __future__ import annotations

import json
import math
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EMAWeightAveraging
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.trainer.states import TrainerFn

from paperzoo.core.errors import ConfigError, NonFiniteLossError

_PACKAGES = (
    "paperzoo-core",
    "paperzoo-vision",
    "paperzoo-sequence",
    "paperzoo-generative",
    "paperzoo-graph",
    "paperzoo-llm",
    "torch",
    "lightning",
    "torchmetrics",
    "jsonargparse",
    "numpy",
    "timm",
    "torchvision",
    "torch-geometric",
    "transformers",
    "peft",
    "diffusers",
    "wandb",
)


class NonFiniteLossGuard(Callback):
    """Stops training at the first NaN or infinite loss, naming the step.

    It looks at the loss before the backward pass, so the broken update is never applied and no
    checkpoint is written from it: the last good checkpoint stays the newest one on disk.
    """

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        value = float(loss.detach())
        if math.isfinite(value):
            return
        last = _newest_checkpoint(trainer)
        kept = f"the last good checkpoint is {last}" if last else "no checkpoint had been written yet"
        raise NonFiniteLossError(
            f"the training loss became {value} at step {trainer.global_step} (epoch {trainer.current_epoch}); "
            f"training stopped before that update and {kept}; lower the learning rate or check the data"
        )


def _newest_checkpoint(trainer: L.Trainer) -> str | None:
    paths = [getattr(cb, "last_model_path", "") or getattr(cb, "best_model_path", "") for cb in trainer.callbacks]
    existing = [p for p in paths if p and Path(p).exists()]
    return max(existing, key=lambda p: Path(p).stat().st_mtime) if existing else None


def _local_log_dir(trainer: L.Trainer) -> str | None:
    """``trainer.log_dir`` without its broadcast."""
    if not trainer.loggers:
        return trainer.default_root_dir
    return getattr(trainer.loggers[0], "log_dir", None) or trainer.loggers[0].save_dir


def git_commit(cwd: str | Path | None = None) -> str | None:
    """The checkout's commit (with ``-dirty`` for uncommitted changes), or None outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def environment_record() -> dict[str, Any]:
    """What ran: package versions, Python, platform, devices, the command line and the git commit."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "command": sys.argv,
        "git_commit": git_commit(Path(__file__).parent),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "packages": versions,
    }


class RunRecordCallback(SaveConfigCallback):
    """Saves the resolved config (``config.yaml``) and ``environment.json`` in the run directory, and
    sends both to W&B when a WandbLogger is attached."""

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Called on rank 0 only, so no collective here: `trainer.log_dir` would broadcast and hang DDP.
        log_dir = _local_log_dir(trainer)
        if log_dir is None:
            return
        record = environment_record()
        path = Path(log_dir) / "environment.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2) + "\n")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                config = self.parser.dump(self.config, skip_none=False, format="json")
                logger.experiment.config.update(
                    {"config": json.loads(config), "environment": record}, allow_val_change=True
                )


class EMA(EMAWeightAveraging):
    """An exponential moving average of the weights, used to validate, test and checkpoint.

    Averaging the iterates of stochastic gradient descent (Polyak & Juditsky, "Acceleration of Stochastic
    Approximation by Averaging", SIAM J. Control Optim. 1992) smooths out the noise of the last steps; the
    exponential form, with decay 0.9999, is how Szegedy et al. evaluate Inception-v3 ("Rethinking the Inception
    Architecture for Computer Vision", CVPR 2016), and GANs and diffusion models sample from such an average.
    After every ``update_every_n_steps``-th optimiser step ``t`` (from ``update_starting_at_step`` on)::

        ema_1 = theta_1,    ema_t = decay * ema_(t-1) + (1 - decay) * theta_t

    for every parameter and floating-point buffer (batch-norm statistics included). This is a thin layer over
    Lightning's :class:`~lightning.pytorch.callbacks.EMAWeightAveraging` (``torch.optim.swa_utils.AveragedModel``):
    validation during training runs on the averaged weights; when training ends they replace the trained ones,
    so a test in the same process uses them; a checkpoint holds them as its ``state_dict`` (the trained weights
    and the average's state go in ``current_model_state`` and ``averaging_state``, so a resumed run carries on
    both), which is what ``trainer.test(ckpt_path=...)`` and ``paperzoo run`` load.

    In YAML::

        trainer:
          callbacks:
            - class_path: paperzoo.core.callbacks.EMA
              init_args: {decay: 0.999}

    Args:
        decay: the weight of the past average at each update, in [0, 1]; about ``1 / (1 - decay)`` updates are
            averaged.
        update_every_n_steps: update after every n-th optimiser step.
        update_starting_at_step: first optimiser step (0-based) that updates the average; ``None`` for the first.
        device: where the average is kept (``"cpu"`` saves accelerator memory); ``None`` for the model's device.
    """

    def __init__(
        self,
        decay: float = 0.999,
        update_every_n_steps: int = 1,
        update_starting_at_step: int | None = None,
        device: str | None = None,
    ) -> None:
        if not 0.0 <= decay <= 1.0 or update_every_n_steps < 1:
            raise ConfigError(
                f"EMA decay={decay} must lie in [0, 1] and update_every_n_steps={update_every_n_steps} must be >= 1"
            )
        super().__init__(
            device=device,
            use_buffers=True,
            decay=decay,
            update_every_n_steps=update_every_n_steps,
            update_starting_at_step=update_starting_at_step,
        )
        self.decay = decay

    # Lightning's callback keeps its average after fit and would act on it in a later validate/test of the same
    # trainer: swap the stale average in, or load a checkpoint's trained weights over its averaged ones. Outside
    # fitting the weights loaded from a checkpoint's state_dict are already the average, so those hooks do nothing.

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_validation_epoch_start(trainer, pl_module)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_validation_epoch_end(trainer, pl_module)
