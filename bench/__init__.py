"""Benchmarks: each module prints figures and, last, its ratio against a baseline measured in
the same run (never an absolute time compared with a number from another machine)."""
