"""Uniform neighbour sampling in plain PyTorch: the mini-batches of GraphSAGE in PyTorch Geometric's conventions.

PyTorch Geometric's ``NeighborLoader`` samples with compiled kernels from ``pyg-lib`` or ``torch-sparse``. Neither is
on PyPI in a form that installs here (``pyg-lib`` has no PyPI release at all, its wheels are on data.pyg.org per
torch and CUDA version; ``torch-sparse`` has only a 2023 source release that must be compiled against the installed
torch), so this module does the same sampling with tensor operations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data


class _HasEpoch(Protocol):
    epoch: int


class UniformNeighborSampler:
    """Samples the computation graph of a mini-batch of seed nodes, as in GraphSAGE (Hamilton, Ying and Leskovec,
    "Inductive Representation Learning on Large Graphs", NeurIPS 2017, Algorithm 2).

    Hop ``l`` draws, for each node added at hop ``l - 1`` (the seeds at hop 1), ``num_neighbors[l]`` of its
    incoming edges uniformly without replacement (all of them where it has fewer; -1 takes all). Nodes already in
    the subgraph are not expanded again. This is what PyTorch Geometric's ``NeighborLoader`` does with its defaults
    (``replace=False``, ``disjoint=False``, ``subgraph_type="directional"``), and the result follows its conventions:

    - the nodes are the seeds first (``batch_size`` of them, in the given order), then each hop's new nodes;
    - ``edge_index`` holds only the sampled edges, in local ids, from the sampled neighbour to the node that drew it
      (messages flow towards the seeds);
    - node attributes (``x``, ``y``, masks) are sliced by ``n_id``, edge attributes by ``e_id``, the global ids of the
      subgraph's nodes and edges; ``num_sampled_nodes`` and ``num_sampled_edges`` count them per hop.

    Used as a DataLoader's ``collate_fn`` over seed node ids. The draws for a batch are seeded by ``seed``, the epoch
    of ``epoch_of`` (the loader's sampler, whose ``set_epoch`` Lightning calls) and the batch's first seed, so they
    are reproducible and differ between epochs. The loader must run in the main process (``num_workers=0``).

    Args:
        data: the graph; its ``edge_index`` is read once into a compressed by-target layout.
        num_neighbors: neighbours to draw per node at each hop; -1 for all.
        seed: base seed of the draws.
        epoch_of: an object whose ``epoch`` attribute is the current epoch; ``None`` for always 0.
    """

    def __init__(self, data: Data, num_neighbors: Sequence[int], seed: int = 0, epoch_of: _HasEpoch | None = None):
        self.data = data
        self.num_neighbors = list(num_neighbors)
        self.seed = seed
        self.epoch_of = epoch_of
        num_nodes = data.num_nodes
        source, target = data.edge_index
        self.edge_ids = torch.argsort(target, stable=True)  # edges grouped by target
        self.sources = source[self.edge_ids]
        self.ptr = torch.zeros(num_nodes + 1, dtype=torch.long)
        self.ptr[1:] = torch.cumsum(torch.bincount(target, minlength=num_nodes), 0)
        self._local = torch.full((num_nodes,), -1, dtype=torch.long)  # global -> local id, reset after each batch

    def __call__(self, seeds: Sequence[int] | Tensor) -> Data:
        """The sampled subgraph around ``seeds`` (distinct node ids)."""
        seeds = torch.as_tensor(seeds, dtype=torch.long).view(-1)
        epoch = self.epoch_of.epoch if self.epoch_of is not None else 0
        state = np.random.SeedSequence((self.seed, epoch, int(seeds[0]))).generate_state(1, dtype=np.uint64)[0]
        generator = torch.Generator().manual_seed(int(state))

        local = self._local
        local[seeds] = torch.arange(len(seeds))
        node_blocks, rows, cols, edge_blocks = [seeds], [], [], []
        num_sampled_edges = []
        frontier, count = seeds, len(seeds)
        try:
            for k in self.num_neighbors:
                positions, targets = self._sample_edges(frontier, k, generator)
                neighbours = self.sources[positions]
                new = torch.unique(neighbours[local[neighbours] < 0])
                local[new] = torch.arange(count, count + len(new))
                count += len(new)
                rows.append(local[neighbours])
                cols.append(local[targets])
                edge_blocks.append(self.edge_ids[positions])
                node_blocks.append(new)
                num_sampled_edges.append(len(positions))
                frontier = new
        finally:
            n_id = torch.cat(node_blocks)
            local[n_id] = -1

        e_id = torch.cat(edge_blocks)
        batch = Data(edge_index=torch.stack([torch.cat(rows), torch.cat(cols)]), num_nodes=len(n_id))
        for key, value in self.data.items():
            if key == "edge_index" or not isinstance(value, Tensor):
                continue
            if self.data.is_node_attr(key):
                batch[key] = value[n_id]
            elif self.data.is_edge_attr(key):
                batch[key] = value[e_id]
        batch.n_id, batch.e_id = n_id, e_id
        batch.batch_size = len(seeds)
        batch.num_sampled_nodes = [len(block) for block in node_blocks]
        batch.num_sampled_edges = num_sampled_edges
        return batch

    def _sample_edges(self, frontier: Tensor, k: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Up to ``k`` incoming edges of each ``frontier`` node, uniformly without replacement (all for -1).

        Returns:
            ``(positions, targets)``: the chosen edges' positions in the by-target layout, and the node each was
            drawn for.
        """
        start = self.ptr[frontier]
        degree = self.ptr[frontier + 1] - start
        total = int(degree.sum())
        segment = torch.repeat_interleave(torch.arange(len(frontier)), degree)  # (total,) which frontier node
        offsets = torch.cumsum(degree, 0) - degree
        rank = torch.arange(total) - offsets[segment]  # (total,) index of the edge among its node's edges
        if k >= 0 and bool((degree > k).any()):
            # Give each edge a random key and sort the edges by (node, key): each node's first k are a uniform
            # sample without replacement of its edges.
            order = torch.argsort(torch.rand(total, generator=generator))
            order = order[torch.argsort(segment[order], stable=True)]
            positions = start[segment] + rank[order]
            keep = rank < k
            positions, segment = positions[keep], segment[keep]
        else:
            positions = start[segment] + rank
        return positions, frontier[segment]
