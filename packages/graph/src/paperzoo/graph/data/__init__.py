"""paperzoo.graph.data (filled in by the graph issue)."""
