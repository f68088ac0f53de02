"""Benchmarks for secagg's hot primitives; each module prints a table (no timing asserts).

Run from the repository root, e.g. ``.venv/bin/python -m benchmarks.bench_prg`` or
``python benchmarks/bench_shamir.py``; pass ``--quick`` for a small smoke run.
"""
