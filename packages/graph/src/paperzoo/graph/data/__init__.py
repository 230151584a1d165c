"""Node-classification DataModules: one graph, split into training, validation and test nodes by masks."""

from paperzoo.graph.data.base import NodeClassificationDataModule
from paperzoo.graph.data.fashion_knn import FashionMNISTGraphDataModule, edge_homophily, knn_graph
from paperzoo.graph.data.karate import KarateClubDataModule
from paperzoo.graph.data.planetoid import PlanetoidDataModule, read_planetoid, row_normalize
from paperzoo.graph.data.sampling import UniformNeighborSampler

__all__ = [
    "FashionMNISTGraphDataModule",
    "KarateClubDataModule",
    "NodeClassificationDataModule",
    "PlanetoidDataModule",
    "UniformNeighborSampler",
    "edge_homophily",
    "knn_graph",
    "read_planetoid",
    "row_normalize",
]
