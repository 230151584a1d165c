"""The base class of the node-classification DataModules: one graph in memory, split by node masks."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
from torch.utils.data import DataLoader, DistributedSampler
from torch_geometric.data import Data

from paperzoo.core.data import EpochSeededSampler, run_seed
from paperzoo.core.errors import ConfigError
from paperzoo.graph.data.sampling import UniformNeighborSampler

SPLITS = ("train", "val", "test")


class NodeClassificationDataModule(pl.LightningDataModule):
    """One graph whose nodes are split into training, validation and test nodes by boolean masks: the transductive
    semi-supervised setting of Planetoid (Yang et al., "Revisiting Semi-Supervised Learning with Graph Embeddings",
    ICML 2016), GCN (Kipf & Welling, ICLR 2017) and GAT (Velickovic et al., ICLR 2018).

    Every loader yields the whole graph, a :class:`~torch_geometric.data.Data` with ``x`` ``(N, num_features)``
    float32, ``edge_index`` ``(2, E)`` int64, ``y`` ``(N,)`` int64 and boolean ``train_mask``, ``val_mask`` and
    ``test_mask``, once per epoch: the model sees every node and edge and the loss is taken on the stage's mask.

    With ``neighbor_sampling`` the training loader instead yields mini-batches for large graphs, as PyTorch
    Geometric's ``NeighborLoader`` does (GraphSAGE, Hamilton et al., NeurIPS 2017): ``batch_size`` training nodes
    and their sampled neighbourhoods, as subgraphs whose first ``batch_size`` nodes are the seed nodes (see
    :class:`~paperzoo.graph.data.sampling.UniformNeighborSampler`). The seed order and the draws depend only on
    ``(seed, run seed, epoch)``. Validation and testing stay full-batch.

    Subclasses read their dataset in :meth:`load_graph`. ``num_features`` and ``num_classes`` read it when first
    asked for, if :meth:`setup` has not yet run.

    Args:
        neighbor_sampling: neighbours sampled per node at each hop, e.g. ``[25, 10]`` (GraphSAGE's); -1 takes all of
            them; ``None`` trains full-batch.
        batch_size: seed nodes per training mini-batch under ``neighbor_sampling`` (512 in GraphSAGE); unused
            full-batch.
        seed: seed of the mini-batch order and the neighbour draws, mixed with the run seed.
    """

    def __init__(self, neighbor_sampling: list[int] | None = None, batch_size: int = 512, seed: int = 0) -> None:
        super().__init__()
        if neighbor_sampling is not None and (
            not neighbor_sampling or any(k == 0 or k < -1 for k in neighbor_sampling)
        ):
            raise ConfigError(
                f"neighbor_sampling={neighbor_sampling} must be a non-empty list of neighbours per hop, each >= 1 "
                "or -1 for all (or null for full-batch training)"
            )
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, not {batch_size}")
        self.neighbor_sampling = list(neighbor_sampling) if neighbor_sampling is not None else None
        self.batch_size = batch_size
        self.seed = seed
        self.data: Data | None = None
        self._num_classes: int | None = None

    def load_graph(self) -> tuple[Data, int]:
        """Read the dataset; every subclass implements this.

        Returns:
            ``(data, num_classes)``: the graph with ``x``, ``edge_index``, ``y`` and the three masks.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement load_graph()")

    def setup(self, stage: str | None = None) -> None:
        """Load the graph once; later calls do nothing."""
        if self.data is not None:
            return
        data, num_classes = self.load_graph()
        masks = [data[f"{split}_mask"] for split in SPLITS]
        overlap = (masks[0] & masks[1]) | (masks[0] & masks[2]) | (masks[1] & masks[2])
        if overlap.any():
            raise ConfigError(f"{int(overlap.sum())} nodes are in more than one of the train, val and test masks")
        self.data, self._num_classes = data, num_classes

    @property
    def num_features(self) -> int:
        """Features per node (the width of ``x``)."""
        self.setup()
        return int(self.data.num_node_features)

    @property
    def num_classes(self) -> int:
        """Classes of the node labels ``y``."""
        self.setup()
        return int(self._num_classes)

    def train_dataloader(self) -> DataLoader:
        """The whole graph, or with ``neighbor_sampling`` mini-batches of sampled subgraphs around the training
        nodes, each training node a seed once per epoch."""
        self.setup()
        if self.neighbor_sampling is None:
            return self._full_batch()
        seeds = self.data.train_mask.nonzero().view(-1).tolist()
        order_seed = int(np.random.SeedSequence((self.seed, run_seed())).generate_state(1)[0])
        if self.trainer is not None and self.trainer.world_size > 1:
            # Lightning keeps a DistributedSampler it is given, and calls its set_epoch as it does ours.
            sampler = DistributedSampler(
                seeds, self.trainer.world_size, self.trainer.global_rank, shuffle=True, seed=order_seed
            )
        else:
            sampler = EpochSeededSampler(len(seeds), order_seed)
        collate = UniformNeighborSampler(self.data, self.neighbor_sampling, seed=order_seed, epoch_of=sampler)
        return DataLoader(seeds, batch_size=self.batch_size, sampler=sampler, collate_fn=collate)

    def val_dataloader(self) -> DataLoader:
        return self._full_batch()

    def test_dataloader(self) -> DataLoader:
        return self._full_batch()

    def predict_dataloader(self) -> DataLoader:
        """The whole graph: predictions for every node."""
        return self._full_batch()

    def _full_batch(self) -> DataLoader:
        self.setup()
        # batch_size=None turns off collation: the loader yields the Data object itself, once.
        return DataLoader([self.data], batch_size=None)
