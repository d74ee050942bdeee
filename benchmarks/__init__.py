"""Benchmarks behind `ansim bench ...`: dataset builders, runners, peers and reports."""
