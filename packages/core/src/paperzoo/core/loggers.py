"""Experiment tracking: Weights & Biases that never prompts or blocks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import WandbLogger as _LightningWandbLogger


def wandb_credentials_available() -> bool:
    """True when W&B can authenticate without asking: an API key in the environment or in ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return "api.wandb.ai" in netrc.read_text()
    except OSError:
        return False


class WandbLogger(_LightningWandbLogger):
    """Lightning's WandbLogger, offline unless credentials are present.

    With no API key (``WANDB_API_KEY`` or ``wandb login``) the run is written offline to
    ``<save_dir>/wandb/offline-run-*`` and can be uploaded later with ``wandb sync``; W&B never prompts
    for a login and never waits on the network. ``WANDB_MODE`` set by the user wins.

    Args:
        project: the W&B project.
        save_dir: where the local W&B files go.
        offline: force offline (True) or online (False); ``None`` decides from the credentials.
        **kwargs: passed to Lightning's ``WandbLogger`` (``name``, ``entity``, ``tags``, ``log_model`` ...).
    """

    def __init__(self, project: str = "paperzoo", save_dir: str = "runs", offline: bool | None = None, **kwargs: Any):
        if offline is None:
            mode = os.environ.get("WANDB_MODE")
            offline = mode in ("offline", "disabled", "dryrun") if mode else not wandb_credentials_available()
        os.environ.setdefault("WANDB_SILENT", "true")
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        super().__init__(project=project, save_dir=save_dir, offline=offline, **kwargs)
