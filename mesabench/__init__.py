"""mesabench: benchmarks for learned optimization.

Subpackages: ``mesabench.tasks`` (task generators and exact oracles), ``mesabench.kernels`` (fused kernels),
``mesabench.models`` (the model zoo) and ``mesabench.benchmarks`` (harness, analysis and binaries).
"""

__version__ = "0.1.0"
