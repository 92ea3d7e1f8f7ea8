"""mesabench.harness: the experiment library (train, evaluate, results, provenance, statistics, detectors, transitions)."""
