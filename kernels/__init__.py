"""mesabench.kernels."""
