"""Shared LightningModules."""

from paperzoo.core.modules.base import PaperzooModule

__all__ = ["PaperzooModule"]
