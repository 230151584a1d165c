"""A graph-blind baseline: a two-layer perceptron on the node features alone."""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.graph.registry import register_model


class MLP(nn.Module):
    r"""A two-layer perceptron that classifies each node from its own features and ignores the graph, the baseline
    against which Kipf & Welling 2017 and Velickovic et al. 2018 measure what propagation over edges adds (their
    tables list an MLP):

    .. math::
        z_i = W_2\, \mathrm{ReLU}(W_1 x_i + b_1) + b_2

    with dropout on each layer's input. Its defaults are the GCN's (16 hidden units, dropout 0.5), so a comparison
    with ``gcn`` changes only whether the graph is used. It takes the node models' ``forward(x, edge_index)`` so
    the same training code runs it.

    Args:
        in_channels: input features per node.
        out_channels: classes.
        hidden_channels: hidden units.
        dropout: drop probability on each layer's input.

    Shapes:
        - **x:** :math:`(N, F_{in})`.
        - **edge_index:** ignored.
        - **output:** :math:`(N, F_{out})` logits.
    """

    level: ClassVar[str] = "node"

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 16, dropout: float = 0.5) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.dropout = dropout
        self.lin1 = nn.Linear(in_channels, hidden_channels)
        self.lin2 = nn.Linear(hidden_channels, out_channels)

    def forward(self, x: Tensor, edge_index: Tensor | None = None) -> Tensor:
        x = F.dropout(x, p=self.dropout, training=self.training)
        x = F.relu(self.lin1(x))  # (N, hidden)
        x = F.dropout(x, p=self.dropout, training=self.training)
        return self.lin2(x)  # (N, out)


@register_model
def mlp(*, in_channels: int, out_channels: int, **kwargs) -> MLP:
    """A two-layer MLP on node features, with the GCN's width and dropout."""
    return MLP(in_channels, out_channels, **kwargs)
