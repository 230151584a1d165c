"""A bidirectional LSTM sentence classifier: embeddings, our BiLSTM over the real tokens, pooling, a linear head.

The bidirectional RNN is Schuster & Paliwal 1997, "Bidirectional Recurrent Neural Networks"; with LSTM cells it is
Graves & Schmidhuber 2005, "Framewise phoneme classification with bidirectional LSTM and other neural network
architectures". Pooling the states of every word (max or mean over time) rather than reading only the final states
follows Collobert et al. 2011, "Natural Language Processing (Almost) from Scratch", and Conneau et al. 2017,
"Supervised Learning of Universal Sentence Representations from Natural Language Inference Data" (their BiLSTM-max).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from paperzoo.sequence.layers.recurrent import LSTM
from paperzoo.sequence.registry import register_model

Pooling = Literal["max", "mean", "last"]


class BiLSTMClassifier(nn.Module):
    """Sentence classification with a bidirectional LSTM (Graves & Schmidhuber 2005) over word embeddings.

    The padded token ids are embedded, read in both directions by :class:`~paperzoo.sequence.layers.LSTM` with the
    real ``lengths`` (so the backward direction starts at each sentence's last word, not at the padding), pooled into
    one vector of size ``2 * hidden_size`` and classified by a linear layer. Pooling uses only the real steps:

    - ``"max"``: the element-wise maximum of the outputs over the real steps (Conneau et al. 2017's BiLSTM-max);
    - ``"mean"``: their average over the real steps;
    - ``"last"``: the forward direction's state after the last word and the backward direction's after the first.

    Padding therefore does not change the logits: a sentence gives the same output alone or in a batch padded to any
    length. Dropout acts on the embeddings, between LSTM layers and on the pooled vector, in training mode only.

    Args:
        vocab_size: rows of the embedding table; every token id must be below it.
        num_classes: outputs of the head.
        embed_dim: width of the word embeddings.
        hidden_size: width of each direction's LSTM state.
        num_layers: stacked bidirectional LSTM layers.
        pooling: ``"max"``, ``"mean"`` or ``"last"``, see above.
        dropout: dropout probability on the embeddings, between LSTM layers and before the head.
        pad_id: the padding token; its embedding is zero and receives no gradient.

    Shapes:
        - **tokens:** :math:`(B, T)` token ids, padded on the right.
        - **lengths:** :math:`(B)`, the real length of each row, in :math:`[1, T]`; ``None`` if no row is padded.
        - **output:** :math:`(B, C)` logits.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int = 2,
        embed_dim: int = 128,
        hidden_size: int = 128,
        num_layers: int = 1,
        pooling: Pooling = "max",
        dropout: float = 0.5,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        if pooling not in ("max", "mean", "last"):
            raise ValueError(f"pooling must be 'max', 'mean' or 'last', not {pooling!r}")
        if not 0 <= pad_id < vocab_size:
            raise ValueError(f"pad_id={pad_id} must be a token id below vocab_size={vocab_size}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.vocab_size = vocab_size
        self.num_classes = num_classes
        self.hidden_size = hidden_size
        self.pooling = pooling
        self.pad_id = pad_id
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.dropout = nn.Dropout(dropout)
        self.lstm = LSTM(
            embed_dim,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
            bidirectional=True,
        )
        self.head = nn.Linear(2 * hidden_size, num_classes)

    def encode(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The pooled sentence vectors :math:`(B, 2H)`, before dropout and the head."""
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be a (batch, time) tensor of ids, got shape {tuple(tokens.shape)}")
        batch, steps = tokens.shape
        if lengths is None:
            lengths = torch.full((batch,), steps, dtype=torch.long, device=tokens.device)
        lengths = lengths.to(tokens.device)
        x = self.dropout(self.embedding(tokens))  # (B, T, E)
        output, (h_n, _) = self.lstm(x, lengths=lengths)  # (B, T, 2H), (2L, B, H)
        if self.pooling == "last":
            return torch.cat([h_n[-2], h_n[-1]], dim=-1)  # forward after the last word, backward after the first
        real = (torch.arange(steps, device=tokens.device)[None, :] < lengths[:, None]).unsqueeze(-1)  # (B, T, 1)
        if self.pooling == "max":
            return output.masked_fill(~real, float("-inf")).amax(dim=1)  # (B, 2H)
        return output.masked_fill(~real, 0.0).sum(dim=1) / lengths[:, None].to(output.dtype)  # (B, 2H)

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.head(self.dropout(self.encode(tokens, lengths)))  # (B, C)

    def extra_repr(self) -> str:
        return f"pooling={self.pooling!r}, pad_id={self.pad_id}"


@register_model
def bilstm_classifier(**kwargs) -> BiLSTMClassifier:
    """A one-layer BiLSTM-max sentence classifier (128-wide embeddings and states); pass ``vocab_size``."""
    return BiLSTMClassifier(**kwargs)
