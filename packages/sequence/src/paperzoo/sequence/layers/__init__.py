"""paperzoo.sequence.layers (filled in by the sequence issue)."""

from paperzoo.sequence.layers.attention import MultiHeadAttention
from paperzoo.sequence.layers.memory import DNCMemory, NTMMemory
from paperzoo.sequence.layers.positional import SinusoidalPositionalEncoding
from paperzoo.sequence.layers.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from paperzoo.sequence.layers.seq2seq_attention import BahdanauAttention, LuongAttention

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "BahdanauAttention",
    "DNCMemory",
    "GRUCell",
    "LSTMCell",
    "LuongAttention",
    "MultiHeadAttention",
    "NTMMemory",
    "RNNCell",
    "SinusoidalPositionalEncoding",
]
