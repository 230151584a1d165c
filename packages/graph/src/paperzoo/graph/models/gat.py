r"""The transductive graph attention networks of Velickovic et al. 2018, "Graph Attention Networks" (ICLR 2018,
arXiv 1710.10903), with GAT's attention or the dynamic attention of Brody, Alon & Yahav 2022, "How Attentive are Graph
Attention Networks?" (ICLR 2022, arXiv 2105.14491)."""

from __future__ import annotations

from typing import ClassVar, Literal

import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.graph.layers import GATConv, GATv2Conv
from paperzoo.graph.registry import register_model

_ATTENTION = {"gat": GATConv, "gatv2": GATv2Conv}


class GAT(nn.Module):
    r"""The two-layer transductive GAT of Velickovic et al. 2018, section 3.3:

    .. math::
        H = \mathrm{ELU}\Big(\big\Vert_{k=1}^{K} \textstyle\sum_j \alpha^k_{ij} W^k x_j\Big), \qquad
        Z = \frac{1}{K'} \sum_{k=1}^{K'} \textstyle\sum_j \alpha'^k_{ij} W'^k h_j

    The first layer has K = 8 heads of F' = 8 features, concatenated, then an ELU; the output layer has K' heads
    averaged (1 for Cora and Citeseer, 8 for Pubmed). Dropout of 0.6 is applied to both layers' inputs and to the
    normalised attention coefficients. The output is logits (the paper's softmax belongs to the loss); the paper's
    L2 penalty (5e-4, 1e-3 on Pubmed) is the optimiser's. On Cora (1433 features, 7 classes) this is 92,373
    parameters. With ``attention="gatv2"`` both layers are GATv2 layers (Brody et al. 2022) and nothing else changes.

    Args:
        in_channels: input features per node.
        out_channels: classes.
        hidden_channels: features per head in the first layer F'.
        heads: heads of the first layer K.
        output_heads: heads of the output layer K', averaged.
        dropout: on each layer's input and on the attention coefficients.
        negative_slope: of the attention's LeakyReLU.
        attention: ``"gat"`` (Velickovic et al.) or ``"gatv2"`` (Brody et al.).
        **conv_kwargs: passed to both attention layers (e.g. ``share_weights`` for GATv2).

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
        hidden_channels: int = 8,
        heads: int = 8,
        output_heads: int = 1,
        dropout: float = 0.6,
        negative_slope: float = 0.2,
        attention: Literal["gat", "gatv2"] = "gat",
        **conv_kwargs,
    ) -> None:
        if attention not in _ATTENTION:
            raise ValueError(f"attention must be 'gat' or 'gatv2', got {attention!r}")
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.dropout = dropout
        conv = _ATTENTION[attention]
        self.conv1 = conv(
            in_channels, hidden_channels, heads, negative_slope=negative_slope, dropout=dropout, **conv_kwargs
        )
        self.conv2 = conv(
            heads * hidden_channels,
            out_channels,
            output_heads,
            concat=False,
            negative_slope=negative_slope,
            dropout=dropout,
            **conv_kwargs,
        )

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        x = F.dropout(x, p=self.dropout, training=self.training)
        x = F.elu(self.conv1(x, edge_index))  # (N, heads * hidden)
        x = F.dropout(x, p=self.dropout, training=self.training)
        return self.conv2(x, edge_index)  # (N, out)


@register_model
def gat(*, in_channels: int, out_channels: int, **kwargs) -> GAT:
    """Velickovic et al. 2018's transductive GAT: 8 heads x 8 features, then ``output_heads`` averaged heads."""
    return GAT(in_channels, out_channels, attention="gat", **kwargs)


@register_model
def gatv2(*, in_channels: int, out_channels: int, **kwargs) -> GAT:
    """GAT's architecture with the GATv2 layers of Brody et al. 2022."""
    return GAT(in_channels, out_channels, attention="gatv2", **kwargs)
