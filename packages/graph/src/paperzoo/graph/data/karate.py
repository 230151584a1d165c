"""Zachary's karate club: 34 members of a university club, the classic small social network."""

from __future__ import annotations

import torch
from torch_geometric.data import Data
from torch_geometric.datasets import KarateClub

from paperzoo.core.data import seeded_split
from paperzoo.core.errors import ConfigError
from paperzoo.graph.data.base import NodeClassificationDataModule


class KarateClubDataModule(NodeClassificationDataModule):
    """Zachary's karate club (Zachary, "An Information Flow Model for Conflict and Fission in Small Groups", Journal
    of Anthropological Research, 1977), as built into PyTorch Geometric (``torch_geometric.datasets.KarateClub``,
    no download): 34 nodes, 78 friendships (156 directed edges), identity one-hot features (34) and 4 classes, the
    communities PyG assigns by modularity-based clustering (13, 12, 4 and 5 members). Kipf & Welling (2017, appendix
    A) train a GCN on it with one labelled node per class.

    Training uses PyG's ``train_mask``: the first node of each class (nodes 0, 4, 8 and 24). The other 30 are split
    into ``val_size`` validation and ``30 - val_size`` test nodes, stratified by class, by a generator seeded with
    ``split_seed`` alone: the split is fixed, so runs with different seeds vary only their initialisation. With the
    defaults, 10 validation nodes (4, 4, 1, 1 of the four classes) and 20 test nodes (8, 7, 2, 3).

    The graph is small: training is full-batch only (see :class:`NodeClassificationDataModule`).

    Args:
        val_size: validation nodes, out of the 30 unlabelled ones; the rest are the test nodes.
        split_seed: seed of the validation/test split.
    """

    def __init__(self, val_size: int = 10, split_seed: int = 0) -> None:
        super().__init__()
        self.save_hyperparameters()
        if not 0 < val_size < 30:
            raise ConfigError(f"val_size={val_size} must lie in 1..29: the karate club has 30 unlabelled nodes")
        self.val_size = val_size
        self.split_seed = split_seed

    def load_graph(self) -> tuple[Data, int]:
        dataset = KarateClub()
        data = dataset[0]
        rest = (~data.train_mask).nonzero().view(-1)  # the 30 nodes without a training label
        test, val = seeded_split(len(rest), self.val_size, self.split_seed, labels=data.y[rest].numpy())
        for split, index in (("val", rest[torch.from_numpy(val)]), ("test", rest[torch.from_numpy(test)])):
            mask = torch.zeros(data.num_nodes, dtype=torch.bool)
            mask[index] = True
            data[f"{split}_mask"] = mask
        return data, dataset.num_classes

    def __repr__(self) -> str:
        return f"{type(self).__name__}(val_size={self.val_size}, split_seed={self.split_seed})"
