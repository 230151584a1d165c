"""paperzoo.sequence: recurrent networks, Seq2Seq with attention and the Transformer, from scratch.

The layout is the one every domain shares: ``layers``, ``models`` (pure nn.Module), ``modules``
(LightningModules), ``data`` (DataModules) and a registry. Its models arrive with the sequence issue.
"""

from paperzoo.sequence import decoding, models
from paperzoo.sequence.data import (
    ParallelTextDataModule,
    RottenTomatoesDataModule,
    SubwordTokenizer,
    SunspotsDataModule,
)
from paperzoo.sequence.decoding import beam_search, greedy_decode
from paperzoo.sequence.layers import (
    GRU,
    LSTM,
    RNN,
    BahdanauAttention,
    GRUCell,
    LSTMCell,
    LuongAttention,
    MultiHeadAttention,
    RNNCell,
    SinusoidalPositionalEncoding,
)
from paperzoo.sequence.models import (
    BiLSTMClassifier,
    LSTMForecaster,
    Seq2Seq,
    Seq2SeqConfig,
    Transformer,
    TransformerConfig,
    seasonal_naive_forecast,
)
from paperzoo.sequence.modules import Forecaster, TextClassifier, TranslationModule
from paperzoo.sequence.registry import create_model, list_models, register_model

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "BahdanauAttention",
    "BiLSTMClassifier",
    "Forecaster",
    "GRUCell",
    "LSTMCell",
    "LSTMForecaster",
    "LuongAttention",
    "MultiHeadAttention",
    "ParallelTextDataModule",
    "RNNCell",
    "RottenTomatoesDataModule",
    "Seq2Seq",
    "Seq2SeqConfig",
    "SinusoidalPositionalEncoding",
    "SubwordTokenizer",
    "SunspotsDataModule",
    "TextClassifier",
    "Transformer",
    "TransformerConfig",
    "TranslationModule",
    "beam_search",
    "create_model",
    "decoding",
    "greedy_decode",
    "list_models",
    "models",
    "register_model",
    "seasonal_naive_forecast",
]
