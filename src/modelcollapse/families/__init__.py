"""Model families: numpy families batched over replicates; see ``base`` for the protocol and
``plugin`` for a user's own family (registered name, entry point or ``"module:Class"``).
Registered in ``modelcollapse.registry.families``.
"""

from ..registry import families as _registry
from .base import BatchedModel, GenerativeModel, PerReplicate

__all__ = ["BatchedModel", "GenerativeModel", "PerReplicate", "register", "get", "names"]

# the registry's calls, so that ``modelcollapse.families.register`` works once this package is
# imported and shadows the top-level ``modelcollapse.families`` registry
register = _registry.register
get = _registry.get
names = _registry.names
