"""paperzoo.graph.modules (filled in by the graph issue)."""
