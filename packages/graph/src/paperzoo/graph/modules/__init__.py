"""paperzoo.graph.modules: the LightningModules of node- and graph-level prediction."""

from paperzoo.graph.modules.graph_level import GraphClassifier, GraphRegressor
from paperzoo.graph.modules.node_classification import NodeClassifier

__all__ = ["GraphClassifier", "GraphRegressor", "NodeClassifier"]
