r"""GraphSAGE's mean aggregator from Hamilton, Ying & Leskovec 2017, "Inductive Representation Learning on Large
Graphs" (NeurIPS 2017, arXiv 1706.02216), from scatter operations."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.graph.layers.utils import scatter_mean


class SAGEConv(nn.Module):
    r"""One GraphSAGE layer with the mean aggregator, Hamilton et al. 2017, Algorithm 1 lines 4-7:

    .. math::
        \vec{h}'_i = W_1 \vec{h}_i + W_2 \cdot \mathrm{mean}_{j \in \mathcal{N}(i)} \vec{h}_j + b, \qquad
        \vec{h}'_i \leftarrow \vec{h}'_i / \lVert \vec{h}'_i \rVert_2 \ \text{(with normalize)}

    The paper's :math:`W \cdot \mathrm{CONCAT}(h_i, h_{\mathcal{N}(i)})` is the sum of two products with the halves of
    :math:`W`, written so. The non-linearity :math:`\sigma` of line 5 is left to the model. :math:`\mathcal{N}(i)` is
    the multiset of sources of edges into :math:`i`, so a duplicate edge counts twice and a self-loop is a neighbour;
    a node without in-neighbours aggregates to zero.

    Parameter names are PyTorch Geometric's: ``lin_l`` (with the bias) acts on the neighbour mean, ``lin_r`` (without)
    on the node itself; a ``torch_geometric.nn.SAGEConv`` state dict loads with a plain ``load_state_dict``. Both are
    initialised as ``torch.nn.Linear``.

    Args:
        in_channels: input features per node.
        out_channels: output features per node.
        normalize: L2-normalise each output row (line 7).
        root_weight: add :math:`W_1 \vec{h}_i`; if False the node's own features enter only through a self-loop.
        bias: learn :math:`b`.

    Shapes:
        - **x:** :math:`(N, F_{in})`.
        - **edge_index:** :math:`(2, E)`.
        - **output:** :math:`(N, F_{out})`.
    """

    def __init__(
        self, in_channels: int, out_channels: int, normalize: bool = False, root_weight: bool = True, bias: bool = True
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.normalize = normalize
        self.root_weight = root_weight
        self.lin_l = nn.Linear(in_channels, out_channels, bias=bias)
        self.lin_r = nn.Linear(in_channels, out_channels, bias=False) if root_weight else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin_l.reset_parameters()
        if self.lin_r is not None:
            self.lin_r.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        source, target = edge_index
        neighbour_mean = scatter_mean(x.index_select(0, source), target, x.size(0))  # (N, F_in)
        out = self.lin_l(neighbour_mean)  # (N, F_out)
        if self.lin_r is not None:
            out = out + self.lin_r(x)
        if self.normalize:
            out = F.normalize(out, p=2.0, dim=-1)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, aggr=mean)"
