"""Helpers for the parity tests that load a reference library's weights into our models and compare outputs.

A parity test is only as strong as the weights it compares with: at a model's usual initialisation (standard
deviation 0.02) attention is nearly uniform and many wrong mappings (a swapped query and key, a transposed
projection) change the outputs by less than the tolerance. :func:`randomize_for_parity` redraws every parameter
at a scale where such a mistake shows.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn


@torch.no_grad()
def randomize_for_parity(
    model: nn.Module, seed: int = 0, norm_suffixes: str | tuple[str, ...] = ("LayerNorm.weight",), scale: float = 0.3
) -> nn.Module:
    """Redraw every parameter from a seeded generator: the weights of normalisation layers (names ending in one of
    ``norm_suffixes``) as ``1 + 0.2 N(0, 1)``, all others as ``scale * N(0, 1)``; return the model in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        noise = torch.randn(p.shape, generator=generator)
        p.copy_(1 + 0.2 * noise if name.endswith(norm_suffixes) else scale * noise)
    return model.eval()


def load_without_warnings(cls: Any, source: Any, **overrides: Any) -> nn.Module:
    """``cls.from_hf(source, **overrides)`` in eval mode, failing on any warning: a complete checkpoint must load
    without "newly initialised" or "unused weights" messages."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return cls.from_hf(source, **overrides).eval()


def assert_hidden_states_close(
    got: Sequence[Tensor], expected: Sequence[Tensor], num_layers: int, **tolerance: float
) -> None:
    """The embeddings' output and every layer's (``num_layers + 1`` tensors on each side) agree within
    ``tolerance`` (``torch.testing.assert_close``'s ``atol``/``rtol``); a failure names the first layer off."""
    assert len(got) == num_layers + 1 == len(expected), (len(got), len(expected), num_layers)
    for layer, (a, b) in enumerate(zip(got, expected, strict=True)):
        torch.testing.assert_close(a, b, **tolerance, msg=lambda m, layer=layer: f"hidden state {layer}: {m}")
