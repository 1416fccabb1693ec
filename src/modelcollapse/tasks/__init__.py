"""Tasks (recipes): a data source (known truth, a real dataset or the user's file) + a model
family + a held-out real test set + the metrics recorded every model-fitting iteration.
Registered in ``modelcollapse.registry.tasks``; ``density`` and ``regression`` run any
compatible family (``families.plugin``).
"""

from ..registry import tasks as _registry
from .base import Task, TaskParams

__all__ = ["Task", "TaskParams", "register", "get", "names"]

# the registry's calls, so that ``modelcollapse.tasks.register`` works once this package is
# imported and shadows the top-level ``modelcollapse.tasks`` registry
register = _registry.register
get = _registry.get
names = _registry.names
