"""A timm-style model registry: ``@register_model`` entry points, ``create_model``, ``list_models``.

Each domain package owns one :class:`ModelRegistry` and re-exports its ``register_model``,
``create_model`` and ``list_models``. Registered names are what tests are generated from, so a
registered model is a tested model.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import TypeVar

from torch import nn

F = TypeVar("F", bound=Callable[..., nn.Module])


class ModelRegistry:
    """Maps model names to builder functions for one domain.

    Args:
        domain: the domain's name, used in error messages (``"vision"``).
    """

    def __init__(self, domain: str) -> None:
        self.domain = domain
        self._builders: dict[str, Callable[..., nn.Module]] = {}

    def register_model(self, fn: F) -> F:
        """Decorator: register ``fn`` under its ``__name__``."""
        name = fn.__name__
        if name in self._builders:
            raise ValueError(f"model {name!r} is already registered in paperzoo.{self.domain}")
        self._builders[name] = fn
        return fn

    def list_models(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style ``pattern``, sorted."""
        return sorted(n for n in self._builders if fnmatch.fnmatch(n, pattern))

    def create_model(self, name: str, **kwargs) -> nn.Module:
        """Build the registered model ``name``, passing ``kwargs`` to its builder."""
        try:
            builder = self._builders[name]
        except KeyError:
            known = ", ".join(self.list_models()) or "none yet"
            raise KeyError(f"unknown model {name!r} in paperzoo.{self.domain}; known models: {known}") from None
        return builder(**kwargs)

    def __contains__(self, name: str) -> bool:
        return name in self._builders
