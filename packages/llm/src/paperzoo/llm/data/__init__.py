"""paperzoo.llm.data (filled in by the llm issue)."""
