"""paperzoo.sequence.layers (filled in by the sequence issue)."""
