"""Shared data helpers: deterministic splits and epoch-seeded shuffling."""

from paperzoo.core.data.sampling import EpochSeededSampler, seeded_split

__all__ = ["EpochSeededSampler", "seeded_split"]
