"""paperzoo.sequence: recurrent networks, Seq2Seq with attention and the Transformer, from scratch.

The layout is the one every domain shares: ``layers``, ``models`` (pure nn.Module), ``modules``
(LightningModules), ``data`` (DataModules) and a registry. Its models arrive with the sequence issue.
"""

from paperzoo.sequence.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
