r"""Graph attention from scatter operations.

- Velickovic et al. 2018, "Graph Attention Networks" (ICLR 2018, arXiv 1710.10903): ``GATConv``.
- Brody, Alon & Yahav 2022, "How Attentive are Graph Attention Networks?" (ICLR 2022, arXiv 2105.14491):
  ``GATv2Conv``, whose scoring function applies the attention vector after the non-linearity.

Both attend over each node's in-neighbours and the node itself: existing self-loops are removed and exactly one loop
per node is appended after the other edges, as in PyTorch Geometric, so a graph with self-loops or duplicate edges
gives PyG's outputs and its attention weights in PyG's edge order (a duplicate edge is attended to twice).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.graph.layers.utils import add_self_loops, glorot_, remove_self_loops, scatter_sum, segment_softmax

AttentionOutput = Tensor | tuple[Tensor, tuple[Tensor, Tensor]]


class _GraphAttentionBase(nn.Module):
    """Arguments, self-loops and the attention-weighted aggregation shared by GAT and GATv2."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        heads: int,
        concat: bool,
        negative_slope: float,
        dropout: float,
        add_self_loops: bool,
        bias: bool,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.heads = heads
        self.concat = concat
        self.negative_slope = negative_slope
        self.dropout = dropout
        self.add_self_loops = add_self_loops
        self.bias = nn.Parameter(torch.empty(heads * out_channels if concat else out_channels)) if bias else None

    def _with_self_loops(self, edge_index: Tensor, num_nodes: int) -> Tensor:
        if not self.add_self_loops:
            return edge_index
        if bool((edge_index[0] == edge_index[1]).any()):  # a graph without loops needs no filtering copy
            edge_index, _ = remove_self_loops(edge_index)
        return add_self_loops(edge_index, num_nodes=num_nodes)[0]  # (2, E_non_loop + N)

    def _aggregate(
        self, scores: Tensor, values: Tensor, edge_index: Tensor, num_nodes: int, return_attention_weights: bool
    ) -> AttentionOutput:
        """Softmax the raw scores ``(E, H)`` over each target's incoming edges, drop coefficients, sum the source
        values ``(N, H, C)`` with them, then concatenate or average the heads and add the bias."""
        source, target = edge_index
        alpha = segment_softmax(scores, target, num_nodes)  # (E, H)
        # Section 2.2: dropout on the normalised coefficients, so each node sees a random subset of its neighbourhood
        alpha = F.dropout(alpha, p=self.dropout, training=self.training)
        messages = alpha.unsqueeze(-1) * values.index_select(0, source)  # (E, H, C)
        out = scatter_sum(messages, target, num_nodes)  # (N, H, C)
        out = out.flatten(1) if self.concat else out.mean(dim=1)  # (N, H*C) or (N, C)
        if self.bias is not None:
            out = out + self.bias
        if return_attention_weights:
            return out, (edge_index, alpha)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, heads={self.heads})"


class GATConv(_GraphAttentionBase):
    r"""The graph attention layer of Velickovic et al. 2018, "Graph Attention Networks", section 2.1:

    .. math::
        e_{ij} = \mathrm{LeakyReLU}\big(\vec{a}^\top [W \vec{h}_i \,\|\, W \vec{h}_j]\big), \qquad
        \alpha_{ij} = \mathrm{softmax}_{j \in \mathcal{N}(i) \cup \{i\}}(e_{ij}), \qquad
        \vec{h}'_i = \big\Vert_{k=1}^{K} \sum_{j} \alpha^k_{ij} W^k \vec{h}_j + b

    with K heads, each with its own :math:`W^k` and :math:`\vec{a}^k`, concatenated (Eq. 5) or, for the output layer,
    averaged (Eq. 6). The attention vector splits into a target half and a source half,
    :math:`\vec{a}^\top [W h_i \| W h_j] = \vec{a}_{dst}^\top W h_i + \vec{a}_{src}^\top W h_j`, so each node's two
    scores are computed once and the edge score is a sum of two gathered numbers per head.

    Parameter names are PyTorch Geometric's: ``lin.weight`` stacks the :math:`W^k` (``(H*C, F_in)``), ``att_src``
    and ``att_dst`` are the halves of :math:`\vec{a}^k` (``(1, H, C)``), ``bias`` is :math:`b`, so a
    ``torch_geometric.nn.GATConv`` state dict loads with a plain ``load_state_dict``. Initialisation is the paper's
    Glorot uniform, with a zero bias.

    Args:
        in_channels: input features per node :math:`F`.
        out_channels: features per head :math:`F'` (C).
        heads: attention heads K.
        concat: concatenate the heads (hidden layers); if False, average them (the paper's output layer).
        negative_slope: of the LeakyReLU; the paper's 0.2.
        dropout: probability of dropping a normalised attention coefficient in training.
        add_self_loops: attend to the node itself: remove existing loops, then add one per node.
        bias: learn :math:`b`.

    Shapes:
        - **x:** :math:`(N, F_{in})`.
        - **edge_index:** :math:`(2, E)`.
        - **output:** :math:`(N, H \cdot C)` with ``concat``, else :math:`(N, C)`; with
          ``return_attention_weights`` also ``(edge_index, alpha)`` of shapes :math:`(2, E')` and :math:`(E', H)`,
          the edges attended over (self-loops included) and their coefficients after dropout.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        heads: int = 1,
        concat: bool = True,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        add_self_loops: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__(in_channels, out_channels, heads, concat, negative_slope, dropout, add_self_loops, bias)
        self.lin = nn.Linear(in_channels, heads * out_channels, bias=False)
        self.att_src = nn.Parameter(torch.empty(1, heads, out_channels))
        self.att_dst = nn.Parameter(torch.empty(1, heads, out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        glorot_(self.lin.weight)
        glorot_(self.att_src)
        glorot_(self.att_dst)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, edge_index: Tensor, return_attention_weights: bool = False) -> AttentionOutput:
        num_nodes = x.size(0)
        h = self.lin(x).view(num_nodes, self.heads, self.out_channels)  # (N, H, C)
        score_src = (h * self.att_src).sum(dim=-1)  # (N, H)
        score_dst = (h * self.att_dst).sum(dim=-1)  # (N, H)
        edge_index = self._with_self_loops(edge_index, num_nodes)
        source, target = edge_index
        scores = score_src.index_select(0, source) + score_dst.index_select(0, target)  # (E, H)
        scores = F.leaky_relu(scores, self.negative_slope)
        return self._aggregate(scores, h, edge_index, num_nodes, return_attention_weights)


class GATv2Conv(_GraphAttentionBase):
    r"""The dynamic graph attention layer of Brody, Alon & Yahav 2022, "How Attentive are Graph Attention Networks?":

    .. math::
        e_{ij} = \vec{a}^\top \mathrm{LeakyReLU}\big(W_s \vec{h}_j + W_t \vec{h}_i\big), \qquad
        \alpha_{ij} = \mathrm{softmax}_{j \in \mathcal{N}(i) \cup \{i\}}(e_{ij}), \qquad
        \vec{h}'_i = \big\Vert_{k=1}^{K} \sum_{j} \alpha^k_{ij} W^k_s \vec{h}_j + b

    The paper writes :math:`W [\vec{h}_i \| \vec{h}_j]` with :math:`W = [W_t \,|\, W_s]`; applying :math:`\vec{a}`
    after the non-linearity is what makes the ranking of neighbours depend on the query node (GAT's is static).
    With ``share_weights`` :math:`W_s = W_t`, one matrix for both ends of an edge as in GAT.

    Parameter names are PyTorch Geometric's: ``lin_l`` is :math:`W_s` (applied to sources, also the values),
    ``lin_r`` is :math:`W_t` (the same module with ``share_weights``), both with a bias when ``bias`` is set,
    ``att`` is :math:`\vec{a}` (``(1, H, C)``), ``bias`` is :math:`b`; a ``torch_geometric.nn.GATv2Conv`` state dict
    loads with a plain ``load_state_dict``.

    Args:
        in_channels: input features per node.
        out_channels: features per head C.
        heads: attention heads K.
        concat: concatenate the heads; if False, average them.
        negative_slope: of the LeakyReLU.
        dropout: probability of dropping a normalised attention coefficient in training.
        add_self_loops: attend to the node itself: remove existing loops, then add one per node.
        bias: learn :math:`b` and the biases of :math:`W_s` and :math:`W_t`.
        share_weights: one matrix for sources and targets.

    Shapes:
        - **x:** :math:`(N, F_{in})`.
        - **edge_index:** :math:`(2, E)`.
        - **output:** :math:`(N, H \cdot C)` with ``concat``, else :math:`(N, C)`; with
          ``return_attention_weights`` also ``(edge_index, alpha)`` of shapes :math:`(2, E')` and :math:`(E', H)`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        heads: int = 1,
        concat: bool = True,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        add_self_loops: bool = True,
        bias: bool = True,
        share_weights: bool = False,
    ) -> None:
        super().__init__(in_channels, out_channels, heads, concat, negative_slope, dropout, add_self_loops, bias)
        self.share_weights = share_weights
        self.lin_l = nn.Linear(in_channels, heads * out_channels, bias=bias)
        self.lin_r = self.lin_l if share_weights else nn.Linear(in_channels, heads * out_channels, bias=bias)
        self.att = nn.Parameter(torch.empty(1, heads, out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in (self.lin_l,) if self.share_weights else (self.lin_l, self.lin_r):
            glorot_(lin.weight)
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)
        glorot_(self.att)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, edge_index: Tensor, return_attention_weights: bool = False) -> AttentionOutput:
        num_nodes = x.size(0)
        h_src = self.lin_l(x).view(num_nodes, self.heads, self.out_channels)  # (N, H, C)
        h_dst = h_src if self.share_weights else self.lin_r(x).view(num_nodes, self.heads, self.out_channels)
        edge_index = self._with_self_loops(edge_index, num_nodes)
        source, target = edge_index
        hidden = h_src.index_select(0, source) + h_dst.index_select(0, target)  # (E, H, C)
        scores = (F.leaky_relu(hidden, self.negative_slope) * self.att).sum(dim=-1)  # (E, H)
        return self._aggregate(scores, h_src, edge_index, num_nodes, return_attention_weights)
