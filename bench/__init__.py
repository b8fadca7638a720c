"""Benchmarks: measured performance, never timed asserts in the unit suite (see bench/RESULTS.md)."""
