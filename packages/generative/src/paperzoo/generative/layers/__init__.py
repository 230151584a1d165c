"""paperzoo.generative.layers (filled in by the generative issue)."""
