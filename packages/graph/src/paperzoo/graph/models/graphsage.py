r"""GraphSAGE with the mean aggregator, Hamilton, Ying & Leskovec 2017, "Inductive Representation Learning on Large
Graphs" (NeurIPS 2017, arXiv 1706.02216)."""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.graph.layers import SAGEConv
from paperzoo.graph.registry import register_model


class GraphSAGE(nn.Module):
    r"""A K = 2 GraphSAGE network (Hamilton et al. 2017, Algorithm 1) with the mean aggregator, for supervised node
    classification:

    .. math::
        h_i = \mathrm{ReLU}\big(W_1 x_i + W_2\, \mathrm{mean}_{j \in \mathcal{N}(i)} x_j\big), \qquad
        z_i = W'_1 h_i + W'_2\, \mathrm{mean}_{j \in \mathcal{N}(i)} h_j

    with dropout on each layer's input. It aggregates over the full neighbourhood rather than the paper's fixed-size
    samples (S1 = 25, S2 = 10), which on small graphs is the exact expectation the sampling estimates. With
    ``normalize`` the hidden representations are L2-normalised after the ReLU (Algorithm 1, line 7); the output
    layer's logits are not.

    Args:
        in_channels: input features per node.
        out_channels: classes.
        hidden_channels: features of the hidden layer.
        dropout: drop probability on each layer's input.
        normalize: L2-normalise the hidden representations.

    Shapes:
        - **x:** :math:`(N, F_{in})`.
        - **edge_index:** :math:`(2, E)`.
        - **output:** :math:`(N, F_{out})` logits.
    """

    level: ClassVar[str] = "node"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int = 64,
        dropout: float = 0.5,
        normalize: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.dropout = dropout
        self.normalize = normalize
        self.conv1 = SAGEConv(in_channels, hidden_channels)
        self.conv2 = SAGEConv(hidden_channels, out_channels)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        x = F.dropout(x, p=self.dropout, training=self.training)
        x = F.relu(self.conv1(x, edge_index))  # (N, hidden)
        if self.normalize:
            x = F.normalize(x, p=2.0, dim=-1)
        x = F.dropout(x, p=self.dropout, training=self.training)
        return self.conv2(x, edge_index)  # (N, out)


@register_model
def graphsage(*, in_channels: int, out_channels: int, **kwargs) -> GraphSAGE:
    """Hamilton et al. 2017's GraphSAGE-mean, K = 2, full neighbourhoods."""
    return GraphSAGE(in_channels, out_channels, **kwargs)
