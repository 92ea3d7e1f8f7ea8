"""Task generators with exact oracles, behind a registry of versioned ids.

    task = mesabench.tasks.make("ModSearch-v0", bits=10)
    batch = task.sample(jax.random.key(0), 256)
    metrics = task.score(batch, predicted_k)

Registered: PolyMax-v0 (maximize a polynomial on [0, 1]), ModSearch-v0 (the seed's k**2 mod n search), Select-v0
(choose the best of k candidates; the inner-alignment task) and Maze-v0 (the start-to-goal path of a perfect maze).
"""
from mesabench.tasks.core import Batch, Spec, Task, concatenate, from_spec, make, register, registered
from mesabench.tasks import maze, modsearch, polymax, select  # registers the tasks

__all__ = ["Batch", "Spec", "Task", "concatenate", "from_spec", "make", "register", "registered", "maze", "modsearch",
           "polymax", "select"]
