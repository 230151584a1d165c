"""paperzoo.sequence: recurrent networks, Seq2Seq with attention and the Transformer, from scratch.

The layout is the one every domain shares: ``layers``, ``models`` (pure nn.Module), ``modules``
(LightningModules), ``data`` (DataModules) and a registry. Its models arrive with the sequence issue.
"""

from paperzoo.sequence import models
from paperzoo.sequence.layers import (
    GRU,
    LSTM,
    RNN,
    GRUCell,
    LSTMCell,
    MultiHeadAttention,
    RNNCell,
    SinusoidalPositionalEncoding,
)
from paperzoo.sequence.models import Transformer, TransformerConfig
from paperzoo.sequence.registry import create_model, list_models, register_model

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "GRUCell",
    "LSTMCell",
    "MultiHeadAttention",
    "RNNCell",
    "SinusoidalPositionalEncoding",
    "Transformer",
    "TransformerConfig",
    "create_model",
    "list_models",
    "models",
    "register_model",
]
