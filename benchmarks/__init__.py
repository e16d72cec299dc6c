"""Benchmarks (`make bench`): dev-only, never shipped in the layer."""
