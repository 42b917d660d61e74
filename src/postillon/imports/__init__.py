"""Contact import from CSV: mapping, streaming, reporting bad rows."""
