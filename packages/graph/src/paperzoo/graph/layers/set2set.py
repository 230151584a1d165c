r"""The Set2Set readout of Vinyals, Bengio & Kudlur 2016, "Order Matters: Sequence to Sequence for Sets" (ICLR 2016,
arXiv 1511.06391), the graph readout of Gilmer et al. 2017's best MPNN, from scatter operations."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from paperzoo.graph.layers.utils import scatter_sum, segment_softmax


class Set2Set(nn.Module):
    r"""The "process" block of Vinyals et al. 2016 (Eq. 3-7), pooling each graph's node set into one
    vector that does not depend on the order of the nodes:

    .. math::
        q_t = \mathrm{LSTM}(q^*_{t-1}), \quad e_{i,t} = \vec{x}_i \cdot q_t, \quad
        a_{i,t} = \mathrm{softmax}_{i \in G}(e_{i,t}), \quad r_t = \sum_{i \in G} a_{i,t} \vec{x}_i, \quad
        q^*_t = [q_t \,\|\, r_t]

    for :math:`t = 1 \dots T`, starting from :math:`q^*_0 = 0` and a zero LSTM state; the output is :math:`q^*_T`.
    All graphs of a batch run through the same LSTM steps side by side, one row each; the softmax and the sum are
    grouped by ``batch``, which need not be sorted. A graph without nodes reads out :math:`r_t = 0`.

    The LSTM is ``torch.nn.LSTM(2C, C)`` under the name ``lstm``, as in PyTorch Geometric, so a
    ``torch_geometric.nn.aggr.Set2Set`` state dict loads with a plain ``load_state_dict``.

    Args:
        in_channels: node features C.
        processing_steps: LSTM steps T.

    Shapes:
        - **x:** :math:`(N, C)`.
        - **batch:** :math:`(N)`, the graph of each node in ``0..B-1``; all nodes in one graph if ``None``.
        - **output:** :math:`(B, 2C)`.
    """

    def __init__(self, in_channels: int, processing_steps: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = 2 * in_channels
        self.processing_steps = processing_steps
        self.lstm = nn.LSTM(self.out_channels, in_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lstm.reset_parameters()

    def forward(self, x: Tensor, batch: Tensor | None = None, num_graphs: int | None = None) -> Tensor:
        if batch is None:
            batch = x.new_zeros(x.size(0), dtype=torch.long)
        if num_graphs is None:
            num_graphs = int(batch.max()) + 1 if batch.numel() > 0 else 1
        state = (x.new_zeros(1, num_graphs, self.in_channels), x.new_zeros(1, num_graphs, self.in_channels))
        q_star = x.new_zeros(num_graphs, self.out_channels)  # (B, 2C)
        for _ in range(self.processing_steps):
            q, state = self.lstm(q_star.unsqueeze(0), state)  # a length-1 sequence: (1, B, C)
            q = q.squeeze(0)  # (B, C)
            scores = (x * q.index_select(0, batch)).sum(dim=-1, keepdim=True)  # (N, 1)
            attention = segment_softmax(scores, batch, num_graphs)  # (N, 1)
            readout = scatter_sum(attention * x, batch, num_graphs)  # (B, C)
            q_star = torch.cat([q, readout], dim=-1)  # (B, 2C)
        return q_star

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"
