"""Shared LightningModules."""

from paperzoo.core.modules.base import PaperzooModule
from paperzoo.core.modules.numpy_mlp import NumpyMLPClassifier
from paperzoo.core.modules.perceptron import PerceptronModule

__all__ = ["NumpyMLPClassifier", "PaperzooModule", "PerceptronModule"]
