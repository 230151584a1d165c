r"""The message passing neural network of Gilmer et al. 2017, "Neural Message Passing for Quantum Chemistry"
(ICML 2017, arXiv 1704.01212): edge-network messages, a GRU update and a Set2Set readout."""

from __future__ import annotations

from typing import ClassVar, Literal

from torch import Tensor, nn

from paperzoo.graph.layers import NNConv, Set2Set
from paperzoo.graph.registry import register_model


class MPNN(nn.Module):
    r"""Gilmer et al. 2017's best MPNN for graph-level regression (section 5, the "edge network" message function,
    the GRU update and the set2set readout):

    .. math::
        h^0_v = W_0 x_v, \qquad
        m^{t+1}_v = \sum_{w \in \mathcal{N}(v)} A(e_{vw})\, h^t_w, \qquad
        h^{t+1}_v = \mathrm{GRU}(h^t_v, m^{t+1}_v), \qquad
        \hat{y} = \mathrm{MLP}\big(\mathrm{set2set}(\{h^T_v\})\big)

    for T ``message_passes``. :math:`A` is a two-layer MLP mapping the edge features to a :math:`d \times d` matrix.
    The message function and the GRU are shared by all passes (tied weights; the paper's :math:`A(e_{vw})` has no
    time index), the message is the pure :math:`A(e_{vw}) h_w` (no root term or bias, since the GRU sees
    :math:`h_v`) and the atom features are mapped linearly to :math:`d` (the paper pads them with zeros, a special
    case). Two readout layers map set2set's
    :math:`2d` numbers to the targets.

    Args:
        in_channels: atom (node) features.
        edge_channels: bond (edge) features.
        out_channels: regression targets per graph.
        hidden_channels: hidden state size d.
        message_passes: message passing steps T.
        edge_hidden_channels: hidden width of the edge network A.
        aggr: ``"add"`` (the paper's sum over neighbours) or ``"mean"``.
        processing_steps: set2set steps.

    Shapes:
        - **x:** :math:`(N, F_{in})`.
        - **edge_index:** :math:`(2, E)`.
        - **edge_attr:** :math:`(E, F_{edge})`.
        - **batch:** :math:`(N)`, each node's graph; one graph if ``None``.
        - **output:** :math:`(B, F_{out})`.
    """

    level: ClassVar[str] = "graph"

    def __init__(
        self,
        in_channels: int,
        edge_channels: int,
        out_channels: int,
        hidden_channels: int = 64,
        message_passes: int = 3,
        edge_hidden_channels: int = 128,
        aggr: Literal["add", "mean"] = "add",
        processing_steps: int = 3,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.edge_channels = edge_channels
        self.out_channels = out_channels
        self.message_passes = message_passes
        self.embed = nn.Linear(in_channels, hidden_channels)
        edge_network = nn.Sequential(
            nn.Linear(edge_channels, edge_hidden_channels),
            nn.ReLU(),
            nn.Linear(edge_hidden_channels, hidden_channels * hidden_channels),
        )
        self.message = NNConv(hidden_channels, hidden_channels, edge_network, aggr=aggr, root_weight=False, bias=False)
        self.update = nn.GRUCell(hidden_channels, hidden_channels)
        self.readout = Set2Set(hidden_channels, processing_steps)
        self.head = nn.Sequential(
            nn.Linear(2 * hidden_channels, hidden_channels), nn.ReLU(), nn.Linear(hidden_channels, out_channels)
        )

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_attr: Tensor,
        batch: Tensor | None = None,
        num_graphs: int | None = None,
    ) -> Tensor:
        h = self.embed(x)  # (N, d)
        for _ in range(self.message_passes):
            m = self.message(h, edge_index, edge_attr)  # (N, d)
            h = self.update(m, h)  # (N, d)
        return self.head(self.readout(h, batch, num_graphs))  # (B, 2d) -> (B, out)


@register_model
def mpnn(*, in_channels: int, edge_channels: int, out_channels: int, **kwargs) -> MPNN:
    """Gilmer et al. 2017's MPNN: edge network, GRU, set2set; d = 64, T = 3."""
    return MPNN(in_channels, edge_channels, out_channels, **kwargs)
