"""paperzoo.generative.models (filled in by the generative issue)."""
