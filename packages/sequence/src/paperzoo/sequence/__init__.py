"""paperzoo.sequence: recurrent networks, Seq2Seq with attention and the Transformer, from scratch.

The layout is the one every domain shares: ``layers``, ``models`` (pure nn.Module), ``modules``
(LightningModules), ``data`` (DataModules) and a registry. Its models arrive with the sequence issue.
"""

from paperzoo.sequence import decoding, models
from paperzoo.sequence.data import (
    AlgorithmicDataModule,
    ParallelTextDataModule,
    RottenTomatoesDataModule,
    SubwordTokenizer,
    SunspotsDataModule,
    TextCorpusDataModule,
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
    CBOW,
    DNC,
    NTM,
    BiLSTMClassifier,
    GloVe,
    LSTMBaseline,
    LSTMForecaster,
    Seq2Seq,
    Seq2SeqConfig,
    SkipGramNS,
    Transformer,
    TransformerConfig,
    seasonal_naive_forecast,
)
from paperzoo.sequence.modules import (
    AlgorithmicTaskModule,
    Forecaster,
    TextClassifier,
    TranslationModule,
    WordEmbeddingModule,
)
from paperzoo.sequence.registry import create_model, list_models, register_model

__all__ = [
    "CBOW",
    "DNC",
    "GRU",
    "LSTM",
    "NTM",
    "RNN",
    "AlgorithmicDataModule",
    "AlgorithmicTaskModule",
    "BahdanauAttention",
    "BiLSTMClassifier",
    "Forecaster",
    "GRUCell",
    "GloVe",
    "LSTMBaseline",
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
    "SkipGramNS",
    "SubwordTokenizer",
    "SunspotsDataModule",
    "TextClassifier",
    "TextCorpusDataModule",
    "Transformer",
    "TransformerConfig",
    "TranslationModule",
    "WordEmbeddingModule",
    "beam_search",
    "create_model",
    "decoding",
    "greedy_decode",
    "list_models",
    "models",
    "register_model",
    "seasonal_naive_forecast",
]
