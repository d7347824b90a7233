"""Finance Report backend: bank statements, the journal and their reconciliation."""
