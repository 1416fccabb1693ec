"""One registry type for tasks, model families, paradigms and metrics.

Entries are either objects or lazy ``"module:attr"`` strings, so registering a torch family does
not import torch until it is used.  Unknown names raise a one-line ``KeyError``-free
``RegistryError`` with did-you-mean suggestions.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator
from typing import Any

__all__ = ["Registry", "RegistryError", "tasks", "paradigms"]


class RegistryError(LookupError):
    """An unknown name was asked of a registry."""


class Registry:
    """A name -> object mapping with lazy ``"module:attr"`` targets.

    Parameters
    ----------
    kind : str
        What the registry holds, used in error messages (``"task"``, ``"paradigm"``...).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Any] = {}

    def register(self, name: str, target: Any = None) -> Any:
        """Register ``target`` under ``name``; without ``target``, return a decorator."""
        if target is None:
            def decorator(obj):
                self._entries[name] = obj
                return obj
            return decorator
        self._entries[name] = target
        return target

    def get(self, name: str) -> Any:
        """Return the object registered as ``name``, importing it if it is lazy.

        Raises
        ------
        RegistryError
            If ``name`` is not registered; the message lists close matches and all names.
        """
        self._load_entry_points()
        if name not in self._entries:
            close = difflib.get_close_matches(name, list(self._entries), n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise RegistryError(
                f"unknown {self.kind} {name!r}.{hint} Allowed: {', '.join(sorted(self._entries))}"
            )
        target = self._entries[name]
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            target = getattr(importlib.import_module(module), attr)
            self._entries[name] = target
        return target

    def names(self) -> list[str]:
        """Registered names, sorted."""
        self._load_entry_points()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    _entry_points_loaded = False

    def _load_entry_points(self) -> None:
        """Pick up third-party entries from the ``modelcollapse.<kind>s`` entry-point group."""
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=f"modelcollapse.{self.kind}s"):
            self._entries.setdefault(ep.name, ep.value)


#: Tasks: name -> TaskSpec class (data source + model family + held-out real test set + metrics).
tasks = Registry("task")
#: Data paradigms: name -> Paradigm class.
paradigms = Registry("paradigm")


def _register_builtins(registry: Registry, entries: dict[str, str]) -> None:
    for name, target in entries.items():
        registry.register(name, target)


_register_builtins(
    tasks,
    {
        "linear_regression": "modelcollapse.tasks.linear_regression:LinearRegressionTask",
        "gaussian": "modelcollapse.tasks.gaussian:GaussianTask",
        "discrete": "modelcollapse.tasks.discrete:DiscreteTask",
        "kde": "modelcollapse.tasks.kde:KDETask",
        "gmm": "modelcollapse.tasks.gmm:GMMTask",
        "vae": "modelcollapse.tasks.vae:VAETask",
        "lm": "modelcollapse.tasks.lm:LMTask",
        "diffusion": "modelcollapse.tasks.diffusion:DiffusionTask",
    },
)
_register_builtins(
    paradigms,
    {
        "replace": "modelcollapse.engine.paradigms:Replace",
        "accumulate": "modelcollapse.engine.paradigms:Accumulate",
        "accumulate-subsample": "modelcollapse.engine.paradigms:AccumulateSubsample",
        "mix": "modelcollapse.engine.paradigms:Mix",
        "real-matched": "modelcollapse.engine.paradigms:RealMatched",
    },
)
