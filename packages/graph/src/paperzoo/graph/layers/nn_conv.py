r"""The edge network of Gilmer et al. 2017, "Neural Message Passing for Quantum Chemistry" (ICML 2017,
arXiv 1704.01212), from scatter operations."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from paperzoo.graph.layers.utils import glorot_, scatter_mean, scatter_sum

_AGGREGATIONS = {"add": scatter_sum, "mean": scatter_mean}


class NNConv(nn.Module):
    r"""The edge-network message function of Gilmer et al. 2017 (section 5, "Edge Network"):

    .. math::
        \vec{x}'_i = \Theta \vec{x}_i + \mathop{\square}_{j \in \mathcal{N}(i)} A(\vec{e}_{ji})\, \vec{x}_j + b

    where the network :math:`A` maps the features of the edge :math:`j \to i` to an :math:`F_{in} \times F_{out}`
    matrix (``nn`` returns :math:`F_{in} F_{out}` numbers per edge, read row-major as :math:`(F_{in}, F_{out})`, so the
    message is ``x_j @ A``) and :math:`\square` is a sum (the paper's :math:`m_v = \sum_w M(h_v, h_w, e_{vw})`) or a
    mean. The root term :math:`\Theta \vec{x}_i` and :math:`b` are not in the paper's message function, whose GRU
    update sees :math:`h_v` anyway; switch them off for the paper's form.

    Parameter names are PyTorch Geometric's (``nn.*``, ``lin.weight`` for :math:`\Theta`, ``bias``), so a
    ``torch_geometric.nn.NNConv`` state dict loads with a plain ``load_state_dict`` into a layer built with an ``nn``
    of the same architecture. ``nn`` keeps its own initialisation; :math:`\Theta` is Glorot uniform, :math:`b` zero.

    Args:
        in_channels: input features per node :math:`F_{in}`.
        out_channels: output features per node :math:`F_{out}`.
        nn: the edge network, ``(E, D) -> (E, F_in * F_out)``.
        aggr: ``"add"`` (the paper) or ``"mean"``.
        root_weight: add :math:`\Theta \vec{x}_i`.
        bias: learn :math:`b`.

    Shapes:
        - **x:** :math:`(N, F_{in})`.
        - **edge_index:** :math:`(2, E)`.
        - **edge_attr:** :math:`(E, D)`.
        - **output:** :math:`(N, F_{out})`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        nn: nn.Module,
        aggr: Literal["add", "mean"] = "add",
        root_weight: bool = True,
        bias: bool = True,
    ) -> None:
        if aggr not in _AGGREGATIONS:
            raise ValueError(f"aggr must be 'add' or 'mean', got {aggr!r}")
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.nn = nn
        self.aggr = aggr
        self.root_weight = root_weight
        self.lin = torch.nn.Linear(in_channels, out_channels, bias=False) if root_weight else None
        self.bias = torch.nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.nn.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        if self.lin is not None:
            glorot_(self.lin.weight)
        if self.bias is not None:
            torch.nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> Tensor:
        source, target = edge_index
        weight = self.nn(edge_attr).view(-1, self.in_channels, self.out_channels)  # (E, F_in, F_out)
        messages = torch.bmm(x.index_select(0, source).unsqueeze(1), weight).squeeze(1)  # (E, 1, F_in) -> (E, F_out)
        out = _AGGREGATIONS[self.aggr](messages, target, x.size(0))  # (N, F_out)
        if self.lin is not None:
            out = out + self.lin(x)
        if self.bias is not None:
            out = out + self.bias
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, aggr={self.aggr}, nn={self.nn})"
