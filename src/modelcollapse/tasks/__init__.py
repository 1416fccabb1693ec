"""Tasks: a data source (known truth or a real dataset) + a model family + a held-out real test set
+ the metrics recorded every model-fitting iteration.  Registered in ``modelcollapse.registry.tasks``.
"""

from .base import Task, TaskParams

__all__ = ["Task", "TaskParams"]
