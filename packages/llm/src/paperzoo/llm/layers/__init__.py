"""paperzoo.llm.layers (filled in by the llm issue)."""
