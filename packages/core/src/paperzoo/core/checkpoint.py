"""Safe checkpoints: atomic writes, weights-only reads, and one-sentence errors for bad files.

* :class:`SafeCheckpointIO` is the Trainer's checkpoint plugin. It writes to a temporary file in the
  target folder, flushes it to disk and renames it over the target, so an interrupted save leaves the
  previous checkpoint intact; and it reads with ``torch.load(weights_only=True)``, refusing a file
  that is truncated, not a torch file, or not a Lightning checkpoint.
* :func:`load_state_dict` reads weights from outside the project (``.safetensors``, or ``.pt``/``.pth``/
  ``.bin`` with ``weights_only=True``), never an arbitrary pickle.
* :func:`average_checkpoints` averages the weights of several checkpoints (Vaswani et al. 2017).
"""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from paperzoo.core.errors import CheckpointError

_LIGHTNING_KEYS = ("state_dict", "pytorch-lightning_version")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` that never leaves a half-written file at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a paperzoo (Lightning) checkpoint, weights-only, or raise :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; check the --ckpt_path you gave")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for a bad file
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"checkpoint {path} cannot be read safely (corrupt, truncated or not a weights-only torch file: "
            f"{reason[:160]}); use another checkpoint, e.g. the run's last.ckpt"
        ) from err
    if not isinstance(checkpoint, dict) or not all(k in checkpoint for k in _LIGHTNING_KEYS):
        raise CheckpointError(
            f"{path} is a torch file but not a paperzoo/Lightning checkpoint (it has no "
            f"{' or '.join(_LIGHTNING_KEYS)}); to load bare weights use paperzoo.core.checkpoint.load_state_dict"
        )
    return checkpoint


class SafeCheckpointIO(TorchCheckpointIO):
    """Trainer checkpoint plugin: atomic saves and validated, weights-only loads."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("SafeCheckpointIO takes no storage_options")
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(
        self, path, map_location: Callable | Any = "cpu", weights_only: bool | None = None
    ) -> dict[str, Any]:
        return read_checkpoint(path, map_location=map_location)


def load_state_dict(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Read a state dict from outside the project without executing pickled code.

    ``.safetensors`` files are read with safetensors; anything else with ``torch.load(weights_only=True)``.
    A Lightning checkpoint's ``state_dict`` is returned as is.

    Raises:
        CheckpointError: the file is missing, corrupt, or holds no tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device=str(map_location))
        else:
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"weights file {path} cannot be read safely ({type(err).__name__}); it is corrupt or holds "
            "pickled objects other than tensors, which paperzoo does not load"
        ) from err
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"weights file {path} does not hold a state dict of tensors")
    return state


def newest_file(pattern: str | Path) -> Path | None:
    """The file ``pattern`` names: a path, or a glob pattern whose most recently written match is taken.

    Returns None when no file matches, so that each caller can say in its own words what to run first.
    """
    pattern = str(pattern)
    matches = glob.glob(pattern) if glob.has_magic(pattern) else [pattern]
    matches = [m for m in matches if os.path.isfile(m)]
    return Path(max(matches, key=os.path.getmtime)) if matches else None


def average_checkpoints(paths: Sequence[str | os.PathLike]) -> dict[str, torch.Tensor]:
    """The elementwise mean of the weights of several checkpoints of one model.

    Vaswani et al. 2017 (section 6.1) evaluate "a single model obtained by averaging the last 5 checkpoints";
    averaging the weights of nearby points of one run smooths out the noise of the last updates. Floating-point
    tensors are averaged (in float64, then cast back to their dtype); the others (integer step counters, boolean
    masks) cannot be averaged and are taken from the last checkpoint. Each file is read as :func:`load_state_dict`
    reads it: a Lightning checkpoint's ``state_dict``, a torch state dict or a ``.safetensors`` file, weights only.

    Load the result with ``module.load_state_dict(average_checkpoints(paths))``, or put it in place of the last
    checkpoint's ``state_dict`` to test it with the CLI.

    Args:
        paths: the checkpoints, oldest first.

    Returns:
        The averaged state dict, with the keys (in the order) of the last checkpoint.

    Raises:
        ValueError: ``paths`` is empty.
        CheckpointError: a file cannot be read, or the checkpoints differ in their keys or shapes.
    """
    if not paths:
        raise ValueError("average_checkpoints needs at least one checkpoint")
    states = [load_state_dict(path) for path in paths]
    last = states[-1]
    for path, state in zip(paths, states, strict=True):
        if state.keys() != last.keys():
            differing = sorted(set(state) ^ set(last))
            raise CheckpointError(
                f"{path} and {paths[-1]} hold different weights ({', '.join(differing[:5])} ...); average checkpoints "
                "of one model only"
            )
        for key, tensor in state.items():
            if tensor.shape != last[key].shape:
                raise CheckpointError(
                    f"{key} has shape {tuple(tensor.shape)} in {path} but {tuple(last[key].shape)} in {paths[-1]}; "
                    "average checkpoints of one model only"
                )
    averaged = {}
    for key, tensor in last.items():
        if tensor.is_floating_point():
            total = sum(state[key].to(torch.float64) for state in states)
            averaged[key] = (total / len(states)).to(tensor.dtype)
        else:
            averaged[key] = tensor.clone()
    return averaged
