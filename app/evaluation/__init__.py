"""Measuring quality honestly: held-out queries only, one real ``Catalog.search`` per query."""
