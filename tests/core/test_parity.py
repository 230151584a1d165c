"""The parity-test helpers: weights redrawn at a scale where a wrong mapping shows, loads that fail on warnings."""

import warnings

import pytest
import torch
from torch import nn

from paperzoo.core.parity import assert_hidden_states_close, load_without_warnings, randomize_for_parity


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(64, 64)
        self.LayerNorm = nn.LayerNorm(64)

    @classmethod
    def from_hf(cls, source: str) -> "_Tiny":
        if source == "partial":
            warnings.warn("Some weights were newly initialised", UserWarning, stacklevel=2)
        return cls()


def test_randomize_redraws_at_the_parity_scale_and_is_seeded():
    model = randomize_for_parity(_Tiny().train(), seed=3)
    assert not model.training
    assert abs(model.proj.weight.std().item() - 0.3) < 0.02  # not nn.Linear's 1/sqrt(64)/sqrt(3) = 0.072
    assert abs(model.LayerNorm.weight.mean().item() - 1.0) < 0.1 and model.LayerNorm.weight.std() > 0.1
    again = randomize_for_parity(_Tiny(), seed=3)
    torch.testing.assert_close(model.proj.weight, again.proj.weight, rtol=0, atol=0)
    other = randomize_for_parity(_Tiny(), seed=4)
    assert not torch.equal(model.proj.weight, other.proj.weight)


def test_load_without_warnings_fails_on_a_warning():
    assert not load_without_warnings(_Tiny, "complete").training
    with pytest.raises(UserWarning, match="newly initialised"):
        load_without_warnings(_Tiny, "partial")


def test_hidden_states_mismatch_names_the_layer():
    states = [torch.zeros(2, 3) for _ in range(3)]
    assert_hidden_states_close(states, [s.clone() for s in states], 2, atol=1e-6, rtol=0)
    off = [s.clone() for s in states]
    off[2] += 1e-3
    with pytest.raises(AssertionError, match="hidden state 2"):
        assert_hidden_states_close(states, off, 2, atol=1e-6, rtol=0)
    with pytest.raises(AssertionError):
        assert_hidden_states_close(states, states[:2], 2)
