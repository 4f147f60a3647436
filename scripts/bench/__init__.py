"""Benchmarks that print numbers: `make bench` (runs inside the emulator stack)."""
