"""Benchmarks: dataset builders, runners and reports behind `ansim bench`."""
