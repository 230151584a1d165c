"""paperzoo.llm: BERT, GPT, LoRA and QLoRA, from scratch.

The layout is the one every domain shares: ``layers``, ``models`` (pure nn.Module), ``modules``
(LightningModules), ``data`` (DataModules) and a registry. Its models arrive with the llm issue.
"""

from paperzoo.llm.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
