"""mesabench.benchmarks."""
