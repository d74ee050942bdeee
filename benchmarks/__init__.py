"""Benchmarks: dataset builders, runners, peers, reports and plots (`ansim bench <what>`)."""
