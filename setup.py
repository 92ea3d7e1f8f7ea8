"""mesabench: a JAX benchmark suite for learned optimization (mesa-optimizers).

One distribution; the top-level folders are installed as subpackages of ``mesabench``
(``tasks/`` -> ``mesabench.tasks`` and so on), never as bare top-level packages.
"""
import setuptools

_SUBPACKAGES = ("tasks", "kernels", "models", "harness", "benchmarks")


def _packages():
  packages = ["mesabench"]
  for sub in _SUBPACKAGES:
    for found in [""] + setuptools.find_packages(sub):
      packages.append("mesabench." + sub + ("." + found if found else ""))
  return packages


def _package_dir():
  mapping = {"mesabench": "mesabench"}
  for sub in _SUBPACKAGES:
    mapping["mesabench." + sub] = sub
  return mapping


setuptools.setup(
    name="mesabench",
    version="0.1.0",
    description="Benchmarks for learned optimization: does a trained network search or memorize?",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=_packages(),
    package_dir=_package_dir(),
    install_requires=[
        # Tested: jax/jaxlib 0.10.2 on CPU (CI); jax 0.11.x is what the GPU machines carry.
        "jax>=0.10.2,<0.12",
        "jaxlib>=0.10.2,<0.12",
        "flax>=0.12.0,<0.13",
        "optax>=0.2.5,<0.3",
        "chex>=0.1.90,<0.2",
        "numpy>=1.26,<3",
        "scipy>=1.11,<2",  # tested: 1.17 (also a dependency of jax); harness.reproduce's t intervals
        "absl-py>=2.1,<3",
        "matplotlib>=3.8,<4",
        "jsonschema>=4.20,<5",  # tested: 4.26
        "tqdm>=4.66,<5",  # tested: 4.70
        "orbax-checkpoint>=0.11,<0.13",  # tested: 0.12.8
    ],
    extras_require={
        "test": ["pytest>=8", "hypothesis>=6.100", "mpmath>=1.3", "pytest-xdist>=3.5",
                 "ruff>=0.6,<1", "import-linter>=2.1,<3"],
    },
)
