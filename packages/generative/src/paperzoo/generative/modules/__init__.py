"""paperzoo.generative.modules (filled in by the generative issue)."""
