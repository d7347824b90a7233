"""Ground every part stands on: errors, paths, processes, signals, state files, redaction, terminal text."""
