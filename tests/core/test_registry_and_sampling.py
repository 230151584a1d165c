"""The model registry and the deterministic data order."""

import numpy as np
import pytest
from torch import nn

from paperzoo.core.data import EpochSeededSampler, seeded_split
from paperzoo.core.registry import ModelRegistry


def test_registry_round_trip_and_errors():
    reg = ModelRegistry("demo")

    @reg.register_model
    def tiny_mlp(width: int = 4) -> nn.Module:
        return nn.Linear(width, 2)

    assert (
        reg.list_models() == ["tiny_mlp"] and reg.list_models("tiny*") == ["tiny_mlp"] and reg.list_models("x*") == []
    )
    assert reg.create_model("tiny_mlp", width=7).in_features == 7
    with pytest.raises(KeyError, match="known models: tiny_mlp"):
        reg.create_model("big_mlp")
    with pytest.raises(ValueError, match="already registered"):
        reg.register_model(tiny_mlp)


def test_epoch_seeded_sampler_depends_only_on_seed_and_epoch():
    a, b = EpochSeededSampler(50, seed=3), EpochSeededSampler(50, seed=3)
    first = list(a)
    assert sorted(first) == list(range(50)) and first != list(range(50))
    a.set_epoch(1)
    assert list(a) != first
    b.set_epoch(1)
    assert list(a) == list(b)
    b.set_epoch(0)
    assert list(b) == first
    assert list(EpochSeededSampler(50, seed=4)) != first


def test_seeded_split_is_disjoint_deterministic_and_stratified():
    labels = np.repeat(np.arange(10), 50)
    keep, held = seeded_split(500, 100, seed=0, labels=labels)
    assert len(keep) == 400 and len(held) == 100 and not set(keep) & set(held)
    assert np.bincount(labels[held]).tolist() == [10] * 10
    again = seeded_split(500, 100, seed=0, labels=labels)
    assert np.array_equal(held, again[1])
    assert not np.array_equal(held, seeded_split(500, 100, seed=1, labels=labels)[1])
    with pytest.raises(ValueError):
        seeded_split(10, 11, seed=0)
