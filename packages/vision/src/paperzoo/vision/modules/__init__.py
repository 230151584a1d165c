"""LightningModules of the vision domain."""

from paperzoo.vision.modules.classifier import ImageClassifier

__all__ = ["ImageClassifier"]
