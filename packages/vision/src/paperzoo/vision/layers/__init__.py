"""Building blocks shared by the vision models."""

from paperzoo.vision.layers.activations import ScaledTanh, create_act

__all__ = ["ScaledTanh", "create_act"]
