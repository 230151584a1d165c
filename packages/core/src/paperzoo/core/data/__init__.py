"""Shared data helpers: deterministic splits, epoch-seeded shuffling, and the logic-gate point clouds."""

from paperzoo.core.data.logic import LogicGateDataModule, logic_gate_points
from paperzoo.core.data.sampling import EpochSeededSampler, run_seed, seeded_split

__all__ = ["EpochSeededSampler", "LogicGateDataModule", "logic_gate_points", "run_seed", "seeded_split"]
