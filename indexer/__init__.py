"""Signal indexes: what was fingerprinted, searchable by similarity. No store access here."""
