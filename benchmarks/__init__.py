"""Latency benchmarks against peers measured in the same run (`make bench`)."""
