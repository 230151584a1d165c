"""The vision model registry: ``@register_model`` entry points, ``create_model``, ``list_models``.

Model files register their variants with ``@register_model``; importing :mod:`paperzoo.vision.models`
imports every model file and so fills the registry.
"""

from paperzoo.core.registry import ModelRegistry

_registry = ModelRegistry("vision")

register_model = _registry.register_model
create_model = _registry.create_model
list_models = _registry.list_models

__all__ = ["create_model", "list_models", "register_model"]
