"""The body of each session: tests, the app stack, docs, lint, infra, bench, perf."""
