"""paperzoo.sequence.data (filled in by the sequence issue)."""
