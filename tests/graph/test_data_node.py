"""Tests of the node-classification DataModules besides Planetoid's reader: the neighbour sampler, the karate club
split, the Fashion-MNIST k-NN graph, and the loaders under Lightning."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torch_geometric.typing
from torch import nn
from torch.utils.data import DistributedSampler
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from paperzoo.core.data import EpochSeededSampler, read_idx
from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError
from paperzoo.core.testing import write_idx, write_mnist
from paperzoo.graph.data import (
    FashionMNISTGraphDataModule,
    KarateClubDataModule,
    PlanetoidDataModule,
    UniformNeighborSampler,
    edge_homophily,
    knn_graph,
)
from paperzoo.graph.testing import write_planetoid

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
HAS_FASHION_MNIST = (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file()
HAS_SAMPLING_KERNELS = torch_geometric.typing.WITH_PYG_LIB or torch_geometric.typing.WITH_TORCH_SPARSE


def edge_set(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    return set(map(tuple, edge_index.T.tolist()))


def random_graph(num_nodes: int = 60, num_edges: int = 150, seed: int = 0) -> Data:
    """A random undirected graph with hubs (node 0 joined to a third of the nodes), features, labels and masks."""
    g = torch.Generator().manual_seed(seed)
    edges = torch.randint(0, num_nodes, (2, num_edges), generator=g)
    hub = torch.stack([torch.zeros(num_nodes // 3, dtype=torch.long), torch.arange(1, num_nodes // 3 + 1)])
    edge_index = torch.cat([edges, hub], dim=1)
    edge_index = to_undirected(edge_index[:, edge_index[0] != edge_index[1]], num_nodes=num_nodes)
    mask = torch.zeros(num_nodes, dtype=torch.bool)
    return Data(
        x=torch.randn(num_nodes, 5, generator=g),
        edge_index=edge_index,
        y=torch.randint(0, 3, (num_nodes,), generator=g),
        train_mask=mask.index_fill(0, torch.arange(0, 20), True),
        val_mask=mask.index_fill(0, torch.arange(20, 40), True),
        test_mask=mask.index_fill(0, torch.arange(40, num_nodes), True),
        edge_weight=torch.rand(edge_index.size(1), generator=g),
    )


def neighbours_of(data: Data, nodes: set[int]) -> set[int]:
    source, target = data.edge_index
    return set(source[torch.isin(target, torch.tensor(sorted(nodes)))].tolist())


# ---------------------------------------------------------------- the neighbour sampler


def test_sampler_with_all_neighbours_gives_the_computation_graph():
    data = random_graph()
    seeds = [7, 3, 0]
    batch = UniformNeighborSampler(data, [-1, -1])(seeds)

    hop1 = neighbours_of(data, set(seeds)) - set(seeds)
    hop2 = neighbours_of(data, hop1) - hop1 - set(seeds)
    assert batch.n_id[:3].tolist() == seeds and batch.batch_size == 3
    assert set(batch.n_id[3 : 3 + len(hop1)].tolist()) == hop1
    assert set(batch.n_id[3 + len(hop1) :].tolist()) == hop2
    assert batch.num_sampled_nodes == [3, len(hop1), len(hop2)]
    assert len(set(batch.n_id.tolist())) == batch.num_nodes == len(batch.n_id)

    # the edges into the seeds and into the hop-1 nodes, each once, pointing from the neighbour to the target
    targets = torch.tensor(sorted(set(seeds) | hop1))
    expected = edge_set(data.edge_index[:, torch.isin(data.edge_index[1], targets)])
    sampled = batch.n_id[batch.edge_index]  # global ids
    assert edge_set(sampled) == expected and sampled.size(1) == len(expected)
    assert torch.equal(data.edge_index[:, batch.e_id], sampled)
    assert sum(batch.num_sampled_edges) == sampled.size(1)
    for key in ("x", "y", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(batch[key], data[key][batch.n_id]), key
    assert torch.equal(batch.edge_weight, data.edge_weight[batch.e_id])


def test_sampler_draws_min_degree_k_distinct_real_edges_per_node():
    data = random_graph(seed=1)
    sampler = UniformNeighborSampler(data, [4, 2], seed=3)
    seeds = list(range(0, 20, 2))
    batch = sampler(seeds)
    degree = torch.bincount(data.edge_index[1], minlength=data.num_nodes)
    sampled = batch.n_id[batch.edge_index]
    assert torch.equal(data.edge_index[:, batch.e_id], sampled), "every sampled edge is an edge of the graph"
    assert len(set(batch.e_id.tolist())) == len(batch.e_id), "without replacement"
    drawn = torch.bincount(sampled[1], minlength=data.num_nodes)
    hop1 = batch.n_id[10 : 10 + batch.num_sampled_nodes[1]]
    assert torch.equal(drawn[seeds], degree[seeds].clamp(max=4))
    assert torch.equal(drawn[hop1], degree[hop1].clamp(max=2))
    assert int(drawn.sum()) == sampled.size(1), "only seeds and hop-1 nodes draw"
    assert (degree[seeds] > 4).any(), "the test graph must make the sampler choose"


def test_sampler_is_uniform():
    # 2,000 stars of 10 leaves; each centre draws 3 leaves: each leaf position should be drawn 3/10 of the time.
    centres, leaves = torch.arange(2000), 2000 + torch.arange(20000)
    edge_index = torch.stack([leaves, centres.repeat_interleave(10)])
    data = Data(edge_index=edge_index, num_nodes=22000)
    batch = UniformNeighborSampler(data, [3], seed=0)(centres)
    position = (batch.n_id[batch.edge_index[0]] - 2000) % 10
    counts = torch.bincount(position, minlength=10).double()
    expected, std = 2000 * 0.3, (2000 * 0.3 * 0.7) ** 0.5
    assert ((counts - expected).abs() < 5 * std).all(), counts


def test_sampler_is_deterministic_per_epoch():
    data = random_graph(seed=2)
    sampler = EpochSeededSampler(20, seed=0)
    draw = UniformNeighborSampler(data, [2, 2], seed=5, epoch_of=sampler)
    first, again = draw([0, 1, 2]), draw([0, 1, 2])
    assert torch.equal(first.n_id, again.n_id) and torch.equal(first.edge_index, again.edge_index)
    sampler.set_epoch(1)
    later = draw([0, 1, 2])
    assert not torch.equal(first.e_id, later.e_id)


@pytest.mark.skipif(not HAS_SAMPLING_KERNELS, reason="PyG's NeighborLoader needs pyg-lib or torch-sparse")
def test_sampler_matches_pyg_neighbor_loader_with_all_neighbours():
    from torch_geometric.loader import NeighborLoader

    data = random_graph(seed=4)
    seeds = torch.tensor([5, 9, 2, 11])
    theirs = next(iter(NeighborLoader(data, num_neighbors=[-1, -1], input_nodes=seeds, batch_size=4)))
    ours = UniformNeighborSampler(data, [-1, -1])(seeds)
    assert torch.equal(ours.n_id[:4], theirs.n_id[:4])
    assert set(ours.n_id.tolist()) == set(theirs.n_id.tolist())
    assert edge_set(ours.n_id[ours.edge_index]) == edge_set(theirs.n_id[theirs.edge_index])
    assert ours.num_sampled_nodes == theirs.num_sampled_nodes


# ---------------------------------------------------------------- neighbour-sampled training loader


def test_neighbor_sampling_train_loader(tmp_path, monkeypatch):
    root = write_planetoid(tmp_path, "cora", num_classes=4, train_per_class=5)
    dm = PlanetoidDataModule("cora", str(root), neighbor_sampling=[3, 2], batch_size=8)
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert isinstance(loader.sampler, EpochSeededSampler)

    def epoch(loader, number):
        loader.sampler.set_epoch(number)
        return list(loader)

    batches = epoch(loader, 0)
    assert [b.batch_size for b in batches] == [8, 8, 4]
    seeds = torch.cat([b.n_id[: b.batch_size] for b in batches])
    assert sorted(seeds.tolist()) == list(range(20)), "each training node is a seed once per epoch"
    for b in batches:
        assert b.train_mask[: b.batch_size].all()
        assert b.x.shape == (b.num_nodes, dm.num_features)

    again = epoch(dm.train_dataloader(), 0)
    assert all(
        torch.equal(a.n_id, b.n_id) and torch.equal(a.edge_index, b.edge_index)
        for a, b in zip(batches, again, strict=True)
    )
    assert not torch.equal(torch.cat([b.n_id for b in epoch(loader, 1)]), torch.cat([b.n_id for b in batches]))
    monkeypatch.setenv("PL_GLOBAL_SEED", "1")  # another run seed: another order
    assert not torch.equal(
        torch.cat([b.n_id for b in epoch(dm.train_dataloader(), 0)]), torch.cat([b.n_id for b in batches])
    )
    # validation and testing stay full-batch
    assert next(iter(dm.val_dataloader())) is dm.data


def test_neighbor_sampling_under_ddp_uses_a_distributed_sampler(tmp_path):
    from types import SimpleNamespace

    dm = PlanetoidDataModule("cora", str(write_planetoid(tmp_path, "cora")), neighbor_sampling=[2])
    dm.trainer = SimpleNamespace(world_size=2, global_rank=1)
    sampler = dm.train_dataloader().sampler
    assert isinstance(sampler, DistributedSampler) and sampler.rank == 1 and sampler.num_replicas == 2


@pytest.mark.parametrize("bad", [[], [0], [5, -2]])
def test_neighbor_sampling_rejects_bad_fanouts(tmp_path, bad):
    with pytest.raises(ConfigError, match="neighbor_sampling"):
        PlanetoidDataModule("cora", str(tmp_path), neighbor_sampling=bad)


class _MaskedLinear(pl.LightningModule):
    """A linear classifier of the node features, trained on the masked nodes: enough to drive the loaders."""

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(num_features, num_classes)
        self.seen: list[tuple[int, torch.Tensor]] = []

    def training_step(self, batch: Data, batch_idx: int) -> torch.Tensor:
        mask = batch.train_mask.clone()
        if hasattr(batch, "batch_size"):
            mask[batch.batch_size :] = False
        self.seen.append((self.current_epoch, batch.n_id if hasattr(batch, "n_id") else batch.x))
        return F.cross_entropy(self.linear(batch.x)[mask], batch.y[mask])

    def validation_step(self, batch: Data, batch_idx: int) -> None:
        loss = F.cross_entropy(self.linear(batch.x)[batch.val_mask], batch.y[batch.val_mask])
        self.log("val/loss", loss, batch_size=int(batch.val_mask.sum()))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.parametrize("neighbor_sampling", [None, [3, 2]], ids=["full-batch", "sampled"])
def test_loaders_drive_a_lightning_fit(tmp_path, neighbor_sampling):
    root = write_planetoid(tmp_path, "cora", num_classes=4, train_per_class=5)

    def fit() -> list[tuple[int, torch.Tensor]]:
        dm = PlanetoidDataModule("cora", str(root), neighbor_sampling=neighbor_sampling, batch_size=8)
        model = _MaskedLinear(dm.num_features, dm.num_classes)
        trainer = pl.Trainer(
            max_epochs=2,
            accelerator="cpu",
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.fit(model, datamodule=dm)
        return model.seen

    seen = fit()
    if neighbor_sampling is None:
        assert [e for e, _ in seen] == [0, 1], "one whole-graph batch per epoch"
    else:
        assert [e for e, _ in seen] == [0, 0, 0, 1, 1, 1]
        assert not torch.equal(seen[0][1], seen[3][1]), "Lightning's set_epoch reaches the sampler"
        assert all(torch.equal(a[1], b[1]) for a, b in zip(seen, fit(), strict=True)), (
            "a second run draws the same batches"
        )


# ---------------------------------------------------------------- karate club


def test_karate_split():
    dm = KarateClubDataModule()
    assert dm.num_features == 34 and dm.num_classes == 4
    data = dm.data
    masks = torch.stack([data.train_mask, data.val_mask, data.test_mask])
    assert masks.sum(dim=1).tolist() == [4, 10, 20]
    assert (masks.sum(dim=0) == 1).all(), "disjoint, and together all 34 nodes"
    assert data.train_mask.nonzero().view(-1).tolist() == [0, 4, 8, 24]
    assert torch.bincount(data.y[data.val_mask], minlength=4).tolist() == [4, 4, 1, 1]
    assert torch.bincount(data.y[data.test_mask], minlength=4).tolist() == [8, 7, 2, 3]


def test_karate_split_is_fixed_by_split_seed_alone(monkeypatch):
    first = KarateClubDataModule()
    first.setup()
    torch.manual_seed(123)
    np.random.seed(123)
    monkeypatch.setenv("PL_GLOBAL_SEED", "7")
    second = KarateClubDataModule()
    second.setup()
    assert torch.equal(first.data.val_mask, second.data.val_mask)
    assert torch.equal(first.data.test_mask, second.data.test_mask)
    other = KarateClubDataModule(split_seed=1)
    other.setup()
    assert not torch.equal(first.data.val_mask, other.data.val_mask)
    assert next(iter(first.train_dataloader())) is first.data


# ---------------------------------------------------------------- Fashion-MNIST k-NN graph


def assert_is_knn_graph(edge_index: torch.Tensor, points: np.ndarray, k: int, margin: float) -> None:
    """``edge_index`` is the symmetrised k-NN graph of ``points`` by exact float64 distances, up to the choice among
    neighbours whose distances are within ``margin`` of a node's k-th nearest (float32 rounding, ties)."""
    square = (points**2).sum(1)
    distances = square[:, None] + square[None, :] - 2 * points @ points.T  # (N, N)
    np.fill_diagonal(distances, np.inf)
    nearest = np.sort(distances, axis=1)
    kth, next_ = nearest[:, k - 1], nearest[:, k]  # (N,) the k-th and (k+1)-th nearest distances
    ours = edge_set(edge_index)
    certain = distances < next_[:, None] - margin  # nearer than the (k+1)-th by a margin: surely among i's k nearest
    certain = {(int(i), int(j)) for i, j in np.argwhere(certain | certain.T)}
    possible = distances <= np.maximum(kth[:, None], kth[None, :]) + margin
    assert certain <= ours, "a certain nearest neighbour is missing"
    assert all(possible[i, j] for i, j in ours), "an edge joins points that are not near enough"
    assert len(certain) >= 0.9 * len(ours), "the test data has too many near-ties to test anything"
    assert edge_index.size(1) == len(ours), "coalesced: each edge once"
    assert edge_set(edge_index.flip(0)) == ours, "symmetric"
    assert not (edge_index[0] == edge_index[1]).any(), "no self-loops"
    assert (np.bincount(edge_index[0].numpy(), minlength=len(points)) >= k).all(), "each node keeps its k neighbours"


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_knn_graph_matches_brute_force(metric):
    x = torch.rand(150, 12, generator=torch.Generator().manual_seed(0)) ** 3
    points = x.double().numpy()
    if metric == "cosine":  # on the unit sphere the Euclidean order is the cosine order
        points = points / np.linalg.norm(points, axis=1, keepdims=True)
    assert_is_knn_graph(knn_graph(x, k=4, metric=metric, chunk_size=64), points, k=4, margin=1e-5)


def test_knn_graph_excludes_self_even_for_duplicate_points():
    x = torch.tensor([[0.0, 0.0], [0.0, 0.0], [5.0, 5.0], [5.0, 6.0]])
    edge_index = knn_graph(x, k=1)
    assert edge_set(edge_index) == {(0, 1), (1, 0), (2, 3), (3, 2)}
    with pytest.raises(ConfigError, match="k=4 must be at least 1 and less than the 4 nodes"):
        knn_graph(x, k=4)


def fashion_dm(data_dir: Path, **kwargs) -> FashionMNISTGraphDataModule:
    """A small graph: 200 of the training images, 5-NN, 20 / 30 / 50 training, validation and test nodes."""
    settings = dict(num_nodes=200, k=5, train_per_class=2, num_val=30, num_test=50) | kwargs
    return FashionMNISTGraphDataModule(str(data_dir), **settings)


def fashion_graph(data_dir: Path, **kwargs) -> Data:
    dm = fashion_dm(data_dir, **kwargs)
    dm.setup()
    return dm.data


def test_fashion_mnist_graph_on_idx_files(tmp_path):
    write_mnist(tmp_path, n_train=300, n_test=10)
    dm = fashion_dm(tmp_path)
    assert dm.num_features == 784 and dm.num_classes == 10
    data = dm.data
    assert data.num_nodes == 200 and torch.bincount(data.y).tolist() == [20] * 10, "a stratified subset"
    assert data.x.dtype == torch.float32 and data.x.min() >= 0 and data.x.max() <= 1

    pixels = (data.x * 255).round().numpy()  # the uint8 pixels of the chosen images
    assert_is_knn_graph(data.edge_index, pixels.astype(np.float64), k=5, margin=100)  # squared pixel units
    assert 0.5 < edge_homophily(data.edge_index, data.y) <= 1, "write_mnist's images carry a class patch"
    images = read_idx(tmp_path / "train-images-idx3-ubyte.gz").reshape(300, 784)
    rows = {row.tobytes() for row in images}
    assert all(row.astype(np.uint8).tobytes() in rows for row in pixels), "the nodes are training images"


def test_fashion_mnist_split(tmp_path, monkeypatch):
    write_mnist(tmp_path, n_train=300, n_test=10)
    data = fashion_graph(tmp_path)
    masks = torch.stack([data.train_mask, data.val_mask, data.test_mask])
    assert masks.sum(dim=1).tolist() == [20, 30, 50]
    assert (masks.sum(dim=0) <= 1).all(), "disjoint"
    assert torch.bincount(data.y[data.train_mask], minlength=10).tolist() == [2] * 10

    torch.manual_seed(5)
    monkeypatch.setenv("PL_GLOBAL_SEED", "3")  # the run seed must not move the split
    again = fashion_graph(tmp_path)
    for key in ("x", "y", "edge_index", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(again[key], data[key]), key
    other = fashion_graph(tmp_path, split_seed=1)
    assert not torch.equal(other.train_mask, data.train_mask)


def test_fashion_mnist_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"apt-get install dataset-fashion-mnist") as e:
        fashion_dm(tmp_path).setup()
    assert "\n" not in str(e.value) and ". " not in str(e.value)

    write_mnist(tmp_path, n_train=300, n_test=10)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(299, np.uint8))
    with pytest.raises(CorruptDataError, match=r"not 300 uint8 labels 0\.\.9 to match train-images"):
        fashion_dm(tmp_path).setup()

    write_mnist(tmp_path, n_train=300, n_test=10)
    with pytest.raises(ConfigError, match="need more than the 180 nodes left"):
        fashion_dm(tmp_path, num_val=100, num_test=100).setup()


@pytest.mark.slow
@pytest.mark.skipif(not HAS_FASHION_MNIST, reason="needs `apt-get install dataset-fashion-mnist`")
def test_fashion_mnist_graph_statistics_on_the_real_data():
    """The numbers the DataModule's docstring states."""
    dm = FashionMNISTGraphDataModule()
    dm.setup()
    data = dm.data
    assert data.num_nodes == 10_000 and torch.bincount(data.y).tolist() == [1000] * 10
    assert [int(data[m].sum()) for m in ("train_mask", "val_mask", "test_mask")] == [200, 500, 1000]
    degree = torch.bincount(data.edge_index[0], minlength=10_000)
    assert data.edge_index.size(1) // 2 == 79_227 and (int(degree.min()), int(degree.max())) == (10, 139)
    assert round(edge_homophily(data.edge_index, data.y), 3) == 0.739
