"""The model registry of paperzoo.graph."""

from paperzoo.core.registry import ModelRegistry

_registry = ModelRegistry("graph")
register_model = _registry.register_model
create_model = _registry.create_model
list_models = _registry.list_models
