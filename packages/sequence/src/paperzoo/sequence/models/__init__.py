"""paperzoo.sequence.models (filled in by the sequence issue)."""

from paperzoo.sequence.models.embeddings import CBOW, GloVe, SkipGramNS, negative_sampling_loss
from paperzoo.sequence.models.forecaster import LSTMForecaster, seasonal_naive_forecast
from paperzoo.sequence.models.memory_networks import DNC, NTM, LSTMBaseline
from paperzoo.sequence.models.seq2seq import (
    Seq2Seq,
    Seq2SeqConfig,
    Seq2SeqState,
    exponential_schedule,
    inverse_sigmoid_schedule,
    linear_schedule,
)
from paperzoo.sequence.models.text_classifier import BiLSTMClassifier
from paperzoo.sequence.models.transformer import (
    Transformer,
    TransformerConfig,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
    from_torch_state_dict,
)

__all__ = [
    "CBOW",
    "DNC",
    "NTM",
    "BiLSTMClassifier",
    "GloVe",
    "LSTMBaseline",
    "LSTMForecaster",
    "Seq2Seq",
    "Seq2SeqConfig",
    "Seq2SeqState",
    "SkipGramNS",
    "Transformer",
    "TransformerConfig",
    "TransformerDecoder",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerEncoderLayer",
    "exponential_schedule",
    "from_torch_state_dict",
    "inverse_sigmoid_schedule",
    "linear_schedule",
    "negative_sampling_loss",
    "seasonal_naive_forecast",
]
