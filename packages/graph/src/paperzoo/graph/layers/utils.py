r"""Graph operations from PyTorch's scatter and index kernels: self-loops, degrees, scatter reductions and the
softmax over each node's incoming edges.

The edge convention is PyTorch Geometric's: ``edge_index`` is a ``(2, E)`` integer tensor whose row 0 holds the
source :math:`j` and row 1 the target :math:`i` of each edge :math:`j \to i`. Messages flow from source to target and
are aggregated at the target, so every reduction below groups edges by ``edge_index[1]``. A sparse adjacency matrix
``adj`` has the transposed layout, ``adj[i, j] != 0`` for an edge :math:`j \to i`, so that :math:`\hat{A} X` is the
sum over each node's in-neighbours (:func:`to_edge_index` converts it). All reductions are over dimension 0, and a
group without members (a node without incoming edges) reduces to zero.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def num_nodes_of(edge_index: Tensor, num_nodes: int | None = None) -> int:
    """``num_nodes`` if given, else one more than the largest node index in ``edge_index`` (0 for no edges)."""
    if num_nodes is not None:
        return num_nodes
    return int(edge_index.max()) + 1 if edge_index.numel() > 0 else 0


def remove_self_loops(edge_index: Tensor, edge_weight: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """Drop every edge :math:`i \\to i`; the other edges keep their order.

    Args:
        edge_index: edges, ``(2, E)``.
        edge_weight: optional per-edge values, ``(E, ...)``, filtered alike.

    Returns:
        ``(edge_index, edge_weight)`` without self-loops.
    """
    keep = edge_index[0] != edge_index[1]
    return edge_index[:, keep], None if edge_weight is None else edge_weight[keep]


def add_self_loops(
    edge_index: Tensor, edge_weight: Tensor | None = None, fill_value: float = 1.0, num_nodes: int | None = None
) -> tuple[Tensor, Tensor | None]:
    """Append one self-loop :math:`i \\to i` for every node ``0..N-1``, after the existing edges.

    Existing self-loops are kept, so a node that has one ends up with two; call :func:`remove_self_loops` first for
    exactly one per node (what GAT does).

    Args:
        edge_index: edges, ``(2, E)``.
        edge_weight: optional per-edge values, ``(E, ...)``; the loops get ``fill_value``.
        fill_value: the value of each new loop.
        num_nodes: N; inferred from ``edge_index`` if not given.

    Returns:
        ``(edge_index, edge_weight)`` with ``E + N`` edges, the loops last and in node order.
    """
    n = num_nodes_of(edge_index, num_nodes)
    nodes = torch.arange(n, device=edge_index.device, dtype=edge_index.dtype)
    edge_index = torch.cat([edge_index, nodes.expand(2, n)], dim=1)  # (2, E + N)
    if edge_weight is not None:
        loops = edge_weight.new_full((n, *edge_weight.shape[1:]), fill_value)
        edge_weight = torch.cat([edge_weight, loops], dim=0)
    return edge_index, edge_weight


def add_remaining_self_loops(
    edge_index: Tensor, edge_weight: Tensor | None = None, fill_value: float = 1.0, num_nodes: int | None = None
) -> tuple[Tensor, Tensor | None]:
    """Give every node exactly one self-loop, keeping the weight of a loop the graph already has.

    The existing loops are taken out and one loop per node is appended after the other edges; a node that had a loop
    keeps that loop's weight (the last one, if it had several), the others get ``fill_value``. This is how PyTorch
    Geometric's ``gcn_norm`` forms :math:`\\tilde{A} = A + I` on graphs that already contain loops.

    Args:
        edge_index: edges, ``(2, E)``.
        edge_weight: optional per-edge weights, ``(E,)``.
        fill_value: the weight of a loop added to a node that had none.
        num_nodes: N; inferred from ``edge_index`` if not given.

    Returns:
        ``(edge_index, edge_weight)``: the non-loop edges in their order, then N loops in node order.
    """
    n = num_nodes_of(edge_index, num_nodes)
    is_loop = edge_index[0] == edge_index[1]
    nodes = torch.arange(n, device=edge_index.device, dtype=edge_index.dtype)
    # A graph without loops (the usual case) keeps all its edges: no boolean indexing, one concatenation per output.
    # Otherwise the positions of the kept edges are found once and every output gathers with them.
    has_loops = bool(is_loop.any())
    kept = (~is_loop).nonzero().squeeze(1) if has_loops else None  # (E_non_loop,)
    non_loop_index = edge_index.index_select(1, kept) if has_loops else edge_index
    new_index = torch.cat([non_loop_index, nodes.expand(2, n)], dim=1)  # (2, E_non_loop + N)
    if edge_weight is None:
        return new_index, None
    loop_weight = edge_weight.new_full((n,), fill_value)
    if not has_loops:
        return new_index, torch.cat([edge_weight, loop_weight], dim=0)
    loop_weight[edge_index[0, is_loop]] = edge_weight[is_loop]
    return new_index, torch.cat([edge_weight.index_select(0, kept), loop_weight], dim=0)


def degree(index: Tensor, num_nodes: int | None = None, dtype: torch.dtype | None = None) -> Tensor:
    """How often each node occurs in ``index``: the in-degree for ``edge_index[1]``, the out-degree for row 0.

    Args:
        index: node indices, ``(E,)``.
        num_nodes: N; inferred from ``index`` if not given.
        dtype: of the result; ``torch.get_default_dtype()`` if not given.

    Returns:
        degrees, ``(N,)``.
    """
    n = num_nodes_of(index, num_nodes)
    ones = torch.ones(index.numel(), dtype=dtype or torch.get_default_dtype(), device=index.device)
    return ones.new_zeros(n).index_add_(0, index, ones)


def scatter_sum(src: Tensor, index: Tensor, dim_size: int) -> Tensor:
    """:math:`out_k = \\sum_{e: index_e = k} src_e` over dimension 0.

    Args:
        src: values, ``(E, *)``.
        index: the group of each row of ``src``, ``(E,)``.
        dim_size: number of groups K.

    Returns:
        ``(K, *)``.
    """
    return src.new_zeros((dim_size, *src.shape[1:])).index_add_(0, index, src)


def scatter_mean(src: Tensor, index: Tensor, dim_size: int) -> Tensor:
    """The mean of each group's rows of ``src`` (zero for an empty group); shapes as :func:`scatter_sum`."""
    count = degree(index, dim_size, dtype=src.dtype).clamp_(min=1)  # (K,)
    return scatter_sum(src, index, dim_size) / count.view(-1, *([1] * (src.dim() - 1)))


def scatter_max(src: Tensor, index: Tensor, dim_size: int) -> Tensor:
    """The elementwise maximum of each group's rows of ``src`` (zero for an empty group); shapes as
    :func:`scatter_sum`. The gradient goes to the maximal entries (split evenly between ties)."""
    expanded = index.view(-1, *([1] * (src.dim() - 1))).expand_as(src)
    out = src.new_zeros((dim_size, *src.shape[1:]))
    return out.scatter_reduce(0, expanded, src, reduce="amax", include_self=False)


def segment_softmax(src: Tensor, index: Tensor, num_groups: int) -> Tensor:
    r"""Softmax of edge scores within each group of edges that share a target node.

    .. math::
        \alpha_e = \frac{\exp(s_e - m_{g(e)})}{\sum_{e': g(e') = g(e)} \exp(s_{e'} - m_{g(e)})}, \qquad
        m_g = \max_{e: g(e) = g} s_e

    Subtracting the group's maximum changes nothing mathematically but keeps every exponent :math:`\le 0`, so large
    scores do not overflow. The maximum is a constant of the softmax, so it is detached: its gradient would be zero
    anyway. Every group that an edge belongs to contains that edge, whose shifted score is at most 0 and for the
    maximal edge exactly 0, so the denominator is at least 1 and needs no epsilon.

    Args:
        src: scores, ``(E, *)`` (e.g. one column per attention head).
        index: the group of each edge (its target node), ``(E,)``.
        num_groups: number of groups (nodes) N.

    Returns:
        ``(E, *)``; within every group and column the entries sum to 1.
    """
    group_max = scatter_max(src.detach(), index, num_groups)  # (N, *)
    exp = (src - group_max.index_select(0, index)).exp()  # (E, *)
    denominator = scatter_sum(exp, index, num_groups)  # (N, *)
    return exp / denominator.index_select(0, index)


def to_edge_index(adj: Tensor) -> tuple[Tensor, Tensor]:
    """A square sparse adjacency (COO or CSR, ``adj[i, j]`` for the edge :math:`j \\to i`) as ``edge_index`` and
    edge weights. Entries stored twice are summed (the matrix is coalesced), as the matrix product would sum them.

    Args:
        adj: ``torch.sparse_coo`` or ``torch.sparse_csr`` tensor of shape ``(N, N)``.

    Returns:
        ``(edge_index, edge_weight)`` of shapes ``(2, E)`` and ``(E,)``, E the number of stored entries.
    """
    if adj.layout == torch.sparse_csr:
        adj = adj.to_sparse_coo()
    if adj.layout != torch.sparse_coo:
        raise ValueError(f"expected a sparse COO or CSR adjacency, got layout {adj.layout}")
    if adj.dim() != 2 or adj.size(0) != adj.size(1):
        raise ValueError(f"expected a square (N, N) adjacency, got shape {tuple(adj.shape)}")
    adj = adj.coalesce()
    target, source = adj.indices()
    return torch.stack([source, target]), adj.values()


def glorot_(tensor: Tensor) -> Tensor:
    r"""Glorot & Bengio 2010 uniform initialisation, :math:`U(\pm\sqrt{6 / (\text{fan}_{in} + \text{fan}_{out})})`,
    with the fans read from the last two dimensions: a ``(1, H, C)`` attention vector counts H and C, as in PyTorch
    Geometric (torch's ``xavier_uniform_`` would read a 3-d tensor as a convolution kernel)."""
    bound = math.sqrt(6.0 / (tensor.size(-2) + tensor.size(-1)))
    with torch.no_grad():
        return tensor.uniform_(-bound, bound)
