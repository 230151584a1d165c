"""paperzoo.graph.layers: graph convolutions, graph attention, the edge network and Set2Set, from scatter operations.

Every layer uses PyTorch Geometric's parameter names, so a PyG layer's state dict loads into ours as it is;
``tests/graph/test_layers.py`` proves outputs and gradients equal.
"""

from paperzoo.graph.layers.gat_conv import GATConv, GATv2Conv
from paperzoo.graph.layers.gcn_conv import GCNConv, gcn_norm
from paperzoo.graph.layers.nn_conv import NNConv
from paperzoo.graph.layers.sage_conv import SAGEConv
from paperzoo.graph.layers.set2set import Set2Set
from paperzoo.graph.layers.utils import (
    add_remaining_self_loops,
    add_self_loops,
    degree,
    remove_self_loops,
    scatter_max,
    scatter_mean,
    scatter_sum,
    segment_softmax,
    to_edge_index,
)

__all__ = [
    "GATConv",
    "GATv2Conv",
    "GCNConv",
    "NNConv",
    "SAGEConv",
    "Set2Set",
    "add_remaining_self_loops",
    "add_self_loops",
    "degree",
    "gcn_norm",
    "remove_self_loops",
    "scatter_max",
    "scatter_mean",
    "scatter_sum",
    "segment_softmax",
    "to_edge_index",
]
