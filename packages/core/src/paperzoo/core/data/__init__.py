"""Shared data helpers: deterministic splits, epoch-seeded shuffling, the loaders of fixed-split DataModules,
logic-gate points, files inside packages, the IDX reader of MNIST and Fashion-MNIST."""

from paperzoo.core.data.idx import IDX_DTYPES, read_idx
from paperzoo.core.data.loaders import SeededLoaderDataModule
from paperzoo.core.data.logic import LogicGateDataModule, logic_gate_points
from paperzoo.core.data.packaged import package_data_file
from paperzoo.core.data.sampling import EpochSeededSampler, run_seed, seeded_split

__all__ = [
    "IDX_DTYPES",
    "EpochSeededSampler",
    "LogicGateDataModule",
    "SeededLoaderDataModule",
    "logic_gate_points",
    "package_data_file",
    "read_idx",
    "run_seed",
    "seeded_split",
]
