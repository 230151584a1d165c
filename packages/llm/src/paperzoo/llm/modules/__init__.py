"""paperzoo.llm.modules (filled in by the llm issue)."""
