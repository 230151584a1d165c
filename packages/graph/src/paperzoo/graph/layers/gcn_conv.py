r"""The graph convolution of Kipf & Welling 2017, "Semi-Supervised Classification with Graph Convolutional Networks"
(ICLR 2017, arXiv 1609.02907), from scatter operations."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from paperzoo.graph.layers.utils import add_remaining_self_loops, glorot_, num_nodes_of, scatter_sum, to_edge_index


def gcn_norm(
    edge_index: Tensor,
    edge_weight: Tensor | None = None,
    num_nodes: int | None = None,
    improved: bool = False,
    add_self_loops: bool = True,
    dtype: torch.dtype | None = None,
) -> tuple[Tensor, Tensor]:
    r"""The renormalised adjacency :math:`\hat{A} = \tilde{D}^{-1/2} \tilde{A} \tilde{D}^{-1/2}` as edge weights.

    :math:`\tilde{A} = A + I` (section 2.1 of the paper), or :math:`A + 2I` with ``improved`` (Kipf & Welling's
    follow-up suggestion, PyTorch Geometric's ``improved=True``), and :math:`\tilde{D}_{ii} = \sum_j \tilde{A}_{ij}`,
    the weighted in-degree. Each edge :math:`j \to i` gets the weight
    :math:`\tilde{A}_{ij} / \sqrt{\tilde{D}_{ii} \tilde{D}_{jj}}`; a node of degree 0 gets :math:`\tilde{D}^{-1/2} = 0`
    instead of infinity.

    A self-loop already in the graph is taken as that node's entry of :math:`\tilde{A}` rather than counted again (the
    last one, if there are several), as PyTorch Geometric's ``gcn_norm`` does for an ``edge_index``; the paper's graphs
    have no loops, where the two readings agree. Unlike PyTorch Geometric, ``improved`` weights the added loops 2 also
    when no ``edge_weight`` is given (PyG 2.8 gives them weight 1 in that case, silently ignoring ``improved``).

    Args:
        edge_index: edges :math:`j \to i`, ``(2, E)``.
        edge_weight: :math:`A_{ij}` per edge, ``(E,)``; ones if not given.
        num_nodes: N; inferred from ``edge_index`` if not given.
        improved: use :math:`A + 2I`.
        add_self_loops: form :math:`\tilde{A}` from :math:`A`; if False, normalise :math:`A` as it is.
        dtype: of the weights created when ``edge_weight`` is not given.

    Returns:
        ``(edge_index, edge_weight)``: the edges of :math:`\tilde{A}` (non-loop edges first, then one loop per node)
        and their normalised weights, ``(2, E')`` and ``(E',)``.
    """
    n = num_nodes_of(edge_index, num_nodes)
    if edge_weight is None:
        edge_weight = torch.ones(edge_index.size(1), dtype=dtype, device=edge_index.device)
    if add_self_loops:
        edge_index, edge_weight = add_remaining_self_loops(edge_index, edge_weight, 2.0 if improved else 1.0, n)
    source, target = edge_index
    deg = scatter_sum(edge_weight, target, n)  # (N,) weighted in-degree D~_ii
    deg_inv_sqrt = deg.pow(-0.5).masked_fill_(deg == 0, 0.0)
    return edge_index, deg_inv_sqrt.index_select(0, source) * edge_weight * deg_inv_sqrt.index_select(0, target)


class GCNConv(nn.Module):
    r"""The graph convolution of Kipf & Welling 2017, "Semi-Supervised Classification with Graph Convolutional
    Networks", with the renormalisation trick (Eq. 8):

    .. math::
        X' = \tilde{D}^{-1/2} \tilde{A} \tilde{D}^{-1/2} X \Theta + b, \qquad
        \tilde{A} = A + I, \quad \tilde{D}_{ii} = \textstyle\sum_j \tilde{A}_{ij}

    node by node :math:`x'_i = \Theta^\top \sum_{j \in \mathcal{N}(i) \cup \{i\}} \frac{\tilde{A}_{ij}}
    {\sqrt{\tilde{D}_{ii} \tilde{D}_{jj}}} x_j + b`. The features are transformed first and then propagated, so the
    sums run over ``out_channels`` columns. See :func:`gcn_norm` for self-loops the graph already has.

    The graph is an ``edge_index`` with optional ``edge_weight`` or, equivalently, a sparse COO or CSR adjacency
    ``adj`` with ``adj[i, j]`` the weight of the edge :math:`j \to i` (converted to an ``edge_index``, so both give
    the same result).

    Parameter names are PyTorch Geometric's (``lin.weight`` is :math:`\Theta^\top`, ``bias`` is :math:`b`), so a
    ``torch_geometric.nn.GCNConv`` state dict loads with a plain ``load_state_dict``. Both are initialised as in the
    paper: Glorot uniform weights, zero bias.

    Args:
        in_channels: input features per node.
        out_channels: output features per node.
        improved: :math:`\tilde{A} = A + 2I`, which weights a node's own features more.
        add_self_loops: add :math:`I` to :math:`A`. Independent of ``normalize``: without normalisation the layer
            sums over :math:`A + I` (PyTorch Geometric refuses that combination).
        normalize: apply :math:`\tilde{D}^{-1/2} \cdot \tilde{D}^{-1/2}`; if False, aggregate with the raw weights.
        bias: learn :math:`b`.
        cached: compute the normalised graph once, on the first call, and reuse it afterwards (transductive
            learning on one fixed graph); :meth:`reset_parameters` clears it.

    Shapes:
        - **x:** :math:`(N, F_{in})`.
        - **edge_index:** :math:`(2, E)`, or a sparse adjacency :math:`(N, N)`.
        - **edge_weight:** :math:`(E)`, optional; not with a sparse adjacency, whose values are the weights.
        - **output:** :math:`(N, F_{out})`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        improved: bool = False,
        add_self_loops: bool = True,
        normalize: bool = True,
        bias: bool = True,
        cached: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.improved = improved
        self.add_self_loops = add_self_loops
        self.normalize = normalize
        self.cached = cached
        self._cached_graph: tuple[Tensor, Tensor] | None = None
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        glorot_(self.lin.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        self._cached_graph = None

    def _propagation_graph(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None) -> tuple[Tensor, Tensor]:
        """The edges and weights to aggregate with: :math:`\\hat{A}` (or :math:`A` without normalisation)."""
        if edge_index.layout != torch.strided:
            if edge_weight is not None:
                raise ValueError("pass edge weights as the values of the sparse adjacency, not as edge_weight")
            edge_index, edge_weight = to_edge_index(edge_index)
        num_nodes = x.size(0)
        if self.normalize:
            return gcn_norm(edge_index, edge_weight, num_nodes, self.improved, self.add_self_loops, x.dtype)
        if edge_weight is None:
            edge_weight = x.new_ones(edge_index.size(1))
        if self.add_self_loops:
            edge_index, edge_weight = add_remaining_self_loops(
                edge_index, edge_weight, 2.0 if self.improved else 1.0, num_nodes
            )
        return edge_index, edge_weight

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        if self.cached and self._cached_graph is not None:
            edge_index, edge_weight = self._cached_graph
        else:
            edge_index, edge_weight = self._propagation_graph(x, edge_index, edge_weight)
            if self.cached:
                self._cached_graph = (edge_index, edge_weight)
        h = self.lin(x)  # (N, F_out)
        source, target = edge_index
        messages = edge_weight.unsqueeze(-1) * h.index_select(0, source)  # (E', F_out)
        out = scatter_sum(messages, target, x.size(0))  # (N, F_out)
        if self.bias is not None:
            out = out + self.bias
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"
