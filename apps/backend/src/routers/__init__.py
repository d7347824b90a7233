"""HTTP routes, one module per resource; all mounted under /api by `src.main`."""
