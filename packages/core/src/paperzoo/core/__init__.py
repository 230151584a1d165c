"""paperzoo.core: what every paperzoo domain shares.

The ``paperzoo`` CLI (:mod:`paperzoo.core.cli`), the base LightningModule with injected optimiser and
schedule (:class:`PaperzooModule`), safe checkpoints, the experiment catalog, callbacks, an offline-safe
W&B logger, the model registry and the errors the CLI reports in one sentence.
"""

from paperzoo.core.checkpoint import SafeCheckpointIO, load_state_dict, read_checkpoint
from paperzoo.core.data import EpochSeededSampler, seeded_split
from paperzoo.core.errors import (
    CheckpointError,
    ConfigError,
    CorruptDataError,
    DatasetNotFoundError,
    NonFiniteLossError,
    PaperzooError,
    UnknownExperimentError,
)
from paperzoo.core.experiments import ExperimentInfo, catalog, resolve
from paperzoo.core.modules import PaperzooModule
from paperzoo.core.registry import ModelRegistry

__all__ = [
    "CheckpointError",
    "ConfigError",
    "CorruptDataError",
    "DatasetNotFoundError",
    "EpochSeededSampler",
    "ExperimentInfo",
    "ModelRegistry",
    "NonFiniteLossError",
    "PaperzooError",
    "PaperzooModule",
    "SafeCheckpointIO",
    "UnknownExperimentError",
    "catalog",
    "load_state_dict",
    "read_checkpoint",
    "resolve",
    "seeded_split",
]
