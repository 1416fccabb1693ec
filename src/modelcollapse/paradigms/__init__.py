"""Data paradigms: how the training set of model-fitting iteration t is built.

One module per paradigm; each is registered in ``modelcollapse.registry.paradigms``.  A new
paradigm is a ``Paradigm`` subclass (``parts``; optional ``Params``, a ``ParadigmParams``
subclass whose fields a study writes beside ``name``) and one ``paradigms.register`` call (or
an entry point in the ``modelcollapse.paradigms`` group).  See ``base`` for the vocabulary.
"""

from ..registry import paradigms as _registry
from .base import ChainView, Paradigm, ParadigmParams, Part

__all__ = ["ChainView", "Paradigm", "ParadigmParams", "Part", "register", "get", "names"]

# the registry's calls, so that ``modelcollapse.paradigms.register`` works once this package
# is imported and shadows the top-level ``modelcollapse.paradigms`` registry
register = _registry.register
get = _registry.get
names = _registry.names
