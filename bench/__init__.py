"""Benchmarks and load checks, run from a checkout of the repository."""
