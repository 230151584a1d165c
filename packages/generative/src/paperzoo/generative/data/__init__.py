"""paperzoo.generative.data (filled in by the generative issue)."""
