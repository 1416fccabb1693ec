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

__all__ = ["Registry", "RegistryError", "tasks", "families", "paradigms", "policies"]


class RegistryError(LookupError):
    """An unknown name was asked of a registry, or a name was registered twice."""


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
        self._builtin: set[str] = set()

    def register(self, name: str, target: Any = None, *, replace: bool = False) -> Any:
        """Register ``target`` under ``name``; without ``target``, return a decorator.

        Raises
        ------
        RegistryError
            If ``name`` is a built-in, or already registered and ``replace`` is False (a
            plug-in never silently shadows or overwrites another entry).
        """
        if target is None:
            def decorator(obj):
                self.register(name, obj, replace=replace)
                return obj
            return decorator
        if name in self._builtin:
            raise RegistryError(f"{self.kind} {name!r} is built in; register yours under "
                                "another name")
        if name in self._entries and not replace and self._entries[name] is not target:
            raise RegistryError(f"{self.kind} {name!r} is already registered "
                                f"({self._describe(name)}); pass replace=True to replace it")
        self._entries[name] = target
        return target

    def _describe(self, name: str) -> str:
        target = self._entries[name]
        if isinstance(target, str):
            return target
        return f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', target)}"

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

    @property
    def entry_point_group(self) -> str:
        """``modelcollapse.<kind>s`` (``modelcollapse.families``, ``modelcollapse.policies``)."""
        plural = self.kind[:-1] + "ies" if self.kind.endswith("y") else self.kind + "s"
        return f"modelcollapse.{plural}"

    def _load_entry_points(self) -> None:
        """Pick up third-party entries from the ``modelcollapse.<kind>s`` entry-point group."""
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=self.entry_point_group):
            if ep.name in self._entries and self._entries[ep.name] != ep.value:
                raise RegistryError(
                    f"{self.kind} {ep.name!r} of the installed package "
                    f"{ep.dist.name if ep.dist else '?'} (entry point {ep.value}) collides with "
                    f"{self._describe(ep.name)}; rename it in that package's entry points")
            self._entries[ep.name] = ep.value

    def builtin(self, entries: dict[str, str]) -> None:
        """Register the package's own entries (lazy ``"module:attr"`` strings)."""
        self._entries.update(entries)
        self._builtin.update(entries)


#: Tasks (recipes): name -> task class (data source + held-out real test set + metrics, run
#: with a model family).
tasks = Registry("task")
#: Model families: name -> model class (``families.base``: ``GenerativeModel`` per replicate,
#: or a batched model with ``batched = True``).
families = Registry("family")
#: Data paradigms: name -> paradigm class (``paradigms.base.Paradigm``, its settings ``Params``).
paradigms = Registry("paradigm")
#: Curation policies: name -> policy class (``curation.base.Policy``, its settings ``Params``).
policies = Registry("policy")


tasks.builtin(
    {
        "linear_regression": "modelcollapse.tasks.linear_regression:LinearRegressionTask",
        "gaussian": "modelcollapse.tasks.gaussian:GaussianTask",
        "discrete": "modelcollapse.tasks.discrete:DiscreteTask",
        "kde": "modelcollapse.tasks.kde:KDETask",
        "gmm": "modelcollapse.tasks.gmm:GMMTask",
        "vae": "modelcollapse.tasks.vae:VAETask",
        "lm": "modelcollapse.tasks.lm:LMTask",
        "sft": "modelcollapse.tasks.sft:SFTTask",
        "diffusion": "modelcollapse.tasks.diffusion:DiffusionTask",
        "density": "modelcollapse.tasks.density:DensityTask",
        "regression": "modelcollapse.tasks.regression:RegressionTask",
    },
)
paradigms.builtin(
    {
        "replace": "modelcollapse.paradigms.replace:Replace",
        "accumulate": "modelcollapse.paradigms.accumulate:Accumulate",
        "accumulate-subsample": "modelcollapse.paradigms.accumulate_subsample:AccumulateSubsample",
        "mix": "modelcollapse.paradigms.mix:Mix",
        "real-matched": "modelcollapse.paradigms.real_matched:RealMatched",
    },
)
policies.builtin(
    {
        "verify": "modelcollapse.curation.verify:Verify",
        "detect": "modelcollapse.curation.detect:Detect",
        "tail_oversample": "modelcollapse.curation.tail_oversample:TailOversample",
        "ratio_cap": "modelcollapse.curation.ratio_cap:RatioCap",
        "weights": "modelcollapse.curation.weights:Weights",
    },
)
families.builtin(
    {
        "gaussian": "modelcollapse.families.gaussian:Gaussian",
        "kde": "modelcollapse.families.kde:KernelDensity",
        "gmm": "modelcollapse.families.gmm:GaussianMixture",
        "linear_regression": "modelcollapse.families.linear_regression:LinearRegression",
        "discrete": "modelcollapse.families.discrete:Categorical",
        "vae": "modelcollapse.families.vae:VAE",
        "lm": "modelcollapse.families.lm:LM",
        "causal_lm": "modelcollapse.families.causal_lm:CausalLM",
        "diffusion": "modelcollapse.families.diffusion:ConformerDiffusion",
    },
)
