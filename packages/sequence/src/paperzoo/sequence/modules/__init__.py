"""paperzoo.sequence.modules (filled in by the sequence issue)."""
