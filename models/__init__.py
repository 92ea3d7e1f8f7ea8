"""The model zoo: trained networks (mlp, transformer, looped, looped_transformer, memory, recurrent_conv,
causal_transformer, and the set models of ``setwise``) and ground truth (memorizers: lookup, lookup_instance;
heuristics: heuristic; searchers: search).

    model = mesabench.models.make("looped", task.spec, width=64, iterations=8)
    params = model.init(jax.random.key(0))

``make(id, spec, **config)`` builds a model for a task's spec; an unknown id raises a ValueError listing the known
ids (``registered()``). The interface every model shares is ``mesabench.models.base.Model``.
"""
from mesabench.models import base
from mesabench.models.base import Model, make, register, registered
from mesabench.models import heuristics, looped, memorizers, memory, mlp  # registers the zoo
from mesabench.models import recurrent_conv, searchers, setwise, transformer  # registers the zoo
from mesabench.models import causal_transformer  # registers the zoo (per-position regression)

__all__ = ["Model", "base", "causal_transformer", "heuristics", "looped", "make", "memorizers", "memory", "mlp",
           "recurrent_conv", "register", "registered", "searchers", "setwise", "transformer"]
