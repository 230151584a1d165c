r"""The two-layer graph convolutional network of Kipf & Welling 2017, "Semi-Supervised Classification with Graph
Convolutional Networks" (ICLR 2017, arXiv 1609.02907)."""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.graph.layers import GCNConv
from paperzoo.graph.registry import register_model


class GCN(nn.Module):
    r"""The semi-supervised node classifier of Kipf & Welling 2017, Eq. 9:

    .. math::
        Z = \hat{A}\, \mathrm{ReLU}(\hat{A} X W^{(0)})\, W^{(1)}, \qquad
        \hat{A} = \tilde{D}^{-1/2} (A + I) \tilde{D}^{-1/2}

    returned as logits (the paper's softmax belongs to the loss), with dropout on the input of each layer and 16
    hidden units (section 5.2). The paper's L2 penalty of :math:`5 \cdot 10^{-4}` on the first layer only is the
    optimiser's business: its parameters are ``conv1.*``.

    Args:
        in_channels: input features per node.
        out_channels: classes.
        hidden_channels: hidden units; the paper's 16.
        dropout: drop probability on each layer's input; the paper's 0.5.
        cached: let each layer normalise the graph once and reuse it (one fixed graph, as in the paper).

    Shapes:
        - **x:** :math:`(N, F_{in})`.
        - **edge_index:** :math:`(2, E)` or a sparse adjacency :math:`(N, N)`.
        - **output:** :math:`(N, F_{out})` logits.
    """

    level: ClassVar[str] = "node"

    def __init__(
        self, in_channels: int, out_channels: int, hidden_channels: int = 16, dropout: float = 0.5, cached: bool = False
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.dropout = dropout
        self.conv1 = GCNConv(in_channels, hidden_channels, cached=cached)
        self.conv2 = GCNConv(hidden_channels, out_channels, cached=cached)

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        x = F.dropout(x, p=self.dropout, training=self.training)
        x = F.relu(self.conv1(x, edge_index, edge_weight))  # (N, hidden)
        x = F.dropout(x, p=self.dropout, training=self.training)
        return self.conv2(x, edge_index, edge_weight)  # (N, out)


@register_model
def gcn(*, in_channels: int, out_channels: int, **kwargs) -> GCN:
    """Kipf & Welling 2017's GCN: 2 layers, 16 hidden units, dropout 0.5."""
    return GCN(in_channels, out_channels, **kwargs)
