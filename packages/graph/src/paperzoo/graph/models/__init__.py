"""paperzoo.graph.models (filled in by the graph issue)."""
