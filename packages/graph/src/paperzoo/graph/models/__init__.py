"""Graph architectures as plain ``nn.Module``s; importing this package registers every model.

Each model has a class attribute ``level``: ``"node"`` models take ``forward(x, edge_index)`` and return one row of
logits per node, ``"graph"`` models take ``forward(x, edge_index, edge_attr, batch)`` and return one row per graph.
"""

from paperzoo.graph.models.gat import GAT
from paperzoo.graph.models.gcn import GCN
from paperzoo.graph.models.graphsage import GraphSAGE
from paperzoo.graph.models.mlp import MLP
from paperzoo.graph.models.mpnn import MPNN

__all__ = ["GAT", "GCN", "MLP", "MPNN", "GraphSAGE"]
