"""paperzoo.sequence.models (filled in by the sequence issue)."""
