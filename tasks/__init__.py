"""mesabench.tasks."""
