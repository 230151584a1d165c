"""paperzoo.graph: GCN, GAT, GATv2, GraphSAGE and the MPNN, from scratch, on PyTorch Geometric's data objects.

The layout is the one every domain shares: ``layers`` (graph convolutions from scatter operations, each proved
equal to PyTorch Geometric's), ``models`` (pure nn.Module), ``modules`` (LightningModules), ``data`` (DataModules
reading the datasets' raw formats) and a registry.
"""

from paperzoo.graph import models
from paperzoo.graph.data import (
    FashionMNISTGraphDataModule,
    KarateClubDataModule,
    NodeClassificationDataModule,
    PlanetoidDataModule,
    read_planetoid,
)
from paperzoo.graph.data.molecules import (
    MoleculeCSVDataModule,
    QM9DataModule,
    SolubilityDataModule,
    mol_to_graph,
)
from paperzoo.graph.layers import GATConv, GATv2Conv, GCNConv, NNConv, SAGEConv, Set2Set
from paperzoo.graph.models import GAT, GCN, MLP, MPNN, GraphSAGE
from paperzoo.graph.modules import GraphClassifier, GraphRegressor, NodeClassifier
from paperzoo.graph.registry import create_model, list_models, register_model

__all__ = [
    "GAT",
    "GCN",
    "MLP",
    "MPNN",
    "FashionMNISTGraphDataModule",
    "GATConv",
    "GATv2Conv",
    "GCNConv",
    "GraphClassifier",
    "GraphRegressor",
    "GraphSAGE",
    "KarateClubDataModule",
    "MoleculeCSVDataModule",
    "NNConv",
    "NodeClassificationDataModule",
    "NodeClassifier",
    "PlanetoidDataModule",
    "QM9DataModule",
    "SAGEConv",
    "Set2Set",
    "SolubilityDataModule",
    "create_model",
    "list_models",
    "models",
    "mol_to_graph",
    "read_planetoid",
    "register_model",
]
