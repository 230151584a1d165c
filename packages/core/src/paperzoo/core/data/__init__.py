"""Shared data helpers: deterministic splits and epoch-seeded shuffling."""

from paperzoo.core.data.sampling import EpochSeededSampler, run_seed, seeded_split

__all__ = ["EpochSeededSampler", "run_seed", "seeded_split"]
