"""Benchmarks: `python -m benchmarks` (full) or `python -m benchmarks --quick` (tiny sizes, CI)."""
