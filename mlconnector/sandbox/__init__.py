"""Simulators of the outside systems, for tests, benchmarks and ``mlconnector demo``."""
