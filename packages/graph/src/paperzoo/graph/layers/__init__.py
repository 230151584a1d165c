"""paperzoo.graph.layers (filled in by the graph issue)."""
