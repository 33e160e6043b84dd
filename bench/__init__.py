"""Benchmarks. They print numbers and ratios against a floor measured in the same run; they never fail
on a time (DESIGN: Tests)."""
