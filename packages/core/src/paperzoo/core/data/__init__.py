"""Shared data helpers: deterministic splits, epoch-seeded shuffling, logic-gate points, files inside packages."""

from paperzoo.core.data.logic import LogicGateDataModule, logic_gate_points
from paperzoo.core.data.packaged import package_data_file
from paperzoo.core.data.sampling import EpochSeededSampler, run_seed, seeded_split

__all__ = [
    "EpochSeededSampler",
    "LogicGateDataModule",
    "logic_gate_points",
    "package_data_file",
    "run_seed",
    "seeded_split",
]
