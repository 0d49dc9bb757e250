"""Benchmarks (run as scripts); a package so they share :mod:`bench._common`."""
