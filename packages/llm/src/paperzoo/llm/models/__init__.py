"""paperzoo.llm.models (filled in by the llm issue)."""
