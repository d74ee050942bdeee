"""Media in, signals out: one module per modality, plus the match decision."""
