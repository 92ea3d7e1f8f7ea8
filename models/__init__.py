"""mesabench.models."""
