"""A study's model family: a registered name or a user's ``"module:attribute"``, with parameters.

A family is a class.  Its instances implement the per-replicate protocol of ``families.base``
(``fit(X, *, sample_weight=None, rng)``, ``sample(n_samples, *, rng)``, ``score_samples(X)``)
and are wrapped in ``PerReplicate``; a class declaring ``batched = True`` implements the batched
protocol itself (every built-in numpy family).  Optional class attributes:

* ``data_kind`` -- what the family models: ``"vector"`` (rows of numbers), ``"supervised"``
  (labels on a fixed design), ``"tokens"``, ``"image"``, ``"text"``, ``"molecules"``.  A task
  (recipe) accepts the kinds it can feed; a family without ``data_kind`` is offered to any.
* ``supports_sample_weight`` -- whether ``fit`` honours ``sample_weight``; by default, whether
  its signature has that parameter.  Weighting curation on a family that has none is an error,
  never a silent no-op.

A regressor in scikit-learn's style (``fit(X, y[, sample_weight])`` and ``predict(X)``, no
``sample``) is a family for the ``regression`` recipe: the recipe makes it generative (Gaussian
labels around its predictions, ``tasks.regression``).

``"module:attribute"`` runs the user's code: the module is imported from the study file's folder
first, then from ``sys.path``.  Presets never use it.
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..registry import RegistryError, families
from .base import PerReplicate, supports_sample_weight
from .importpath import ImportPathError, resolve_import_path

__all__ = ["FamilyError", "FamilySpec", "family_spec", "resolve_family", "is_import_path",
           "supports_sample_weight"]


class FamilyError(ValueError):
    """A family reference or its parameters are invalid (one line for the user)."""


def is_import_path(ref: str) -> bool:
    """Whether ``ref`` is a ``"module:attribute"`` import path (else a registered name)."""
    return ":" in ref


def resolve_family(ref: str, base_dir: str | Path | None = None) -> type:
    """The family class named by ``ref``: a registered name or ``"module:attribute"``.

    Raises
    ------
    FamilyError
        Unknown name (with did-you-mean), a module that cannot be imported (its error in one
        line), or a missing attribute.
    """
    if not is_import_path(ref):
        try:
            return families.get(ref)
        except RegistryError as exc:
            raise FamilyError(f"family: {exc}; or a 'module:Class' import path") from None
    try:
        target = resolve_import_path(ref, base_dir, field="family",
                                     example="my_models:BayesianGMM")
    except ImportPathError as exc:
        raise FamilyError(str(exc)) from None
    if not isinstance(target, type):
        raise FamilyError(f"family: {ref} is a {type(target).__name__}, not a class")
    return target


def _is_regressor(cls: type) -> bool:
    return callable(getattr(cls, "predict", None)) and not callable(getattr(cls, "sample", None))


@dataclass
class FamilySpec:
    """A resolved family: ``ref`` as written, the class, validated keyword ``params``.

    Attributes
    ----------
    name : str
        Name in the results' ``family`` column: the registered name, or the class name of an
        import path.
    """

    ref: str
    cls: type
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.ref.rsplit(":", 1)[-1].rsplit(".", 1)[-1] if is_import_path(self.ref) \
            else self.ref

    @property
    def batched(self) -> bool:
        return bool(getattr(self.cls, "batched", False))

    @property
    def data_kind(self) -> str | None:
        return getattr(self.cls, "data_kind", None)

    @property
    def regressor(self) -> bool:
        """A scikit-learn-style regressor (``fit(X, y)``, ``predict``), not a generative model."""
        return _is_regressor(self.cls)

    @property
    def supports_sample_weight(self) -> bool:
        return supports_sample_weight(self.cls)

    def new(self, **context) -> Any:
        """One fresh, unfitted instance: ``cls(**context, **params)``."""
        return self.cls(**context, **self.params)

    def batch(self, n_replicates: int, *, warm_start: bool = False, **context):
        """A ``BatchedModel`` of ``n_replicates``: the class itself when batched, else
        ``PerReplicate`` of fresh instances."""
        if self.batched:
            return self.new(**context)
        return PerReplicate(lambda: self.new(**context), n_replicates, warm_start=warm_start)

    def provenance(self) -> dict[str, Any]:
        """Where the family's code comes from (JSON-able): module, file and its SHA-256 for an
        import path, and the installed distribution and version when there is one."""
        module = sys.modules.get(self.cls.__module__)
        out: dict[str, Any] = {"name": self.name, "ref": self.ref,
                               "class": f"{self.cls.__module__}:{self.cls.__qualname__}"}
        top = self.cls.__module__.split(".")[0]
        if top != "modelcollapse":
            from importlib import metadata

            dists = metadata.packages_distributions().get(top, [])
            if dists:
                out["package"] = dists[0]
                try:
                    out["version"] = metadata.version(dists[0])
                except metadata.PackageNotFoundError:
                    pass
            path = getattr(module, "__file__", None)
            if path and Path(path).is_file():
                out["file"] = str(Path(path).resolve())
                out["sha256"] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        return out


_PROTOCOL = ("fit", "sample", "score_samples")


def family_spec(ref: str, params: dict[str, Any] | None = None, *,
                base_dir: str | Path | None = None, context: tuple[str, ...] = (),
                kinds: tuple[str, ...] | None = None, task: str = "the task") -> FamilySpec:
    """Resolve and check a family and its ``params`` (the study's ``family_params``).

    ``context`` names constructor arguments the task supplies (e.g. ``design``); they may not
    be given as parameters.  ``kinds``: the data kinds the task can feed (``"regressor"``
    admits scikit-learn-style regressors).  A class with a pydantic ``Params`` model validates
    ``params`` with it; otherwise ``params`` must be keyword parameters of ``__init__``.

    Raises
    ------
    FamilyError
        Unknown family, a family of another data kind, a class missing the protocol's methods,
        unknown or invalid parameters.
    """
    cls = resolve_family(ref, base_dir)
    params = dict(params or {})
    if kinds is not None:
        kind = getattr(cls, "data_kind", None)
        if _is_regressor(cls) and "regressor" not in kinds:
            raise FamilyError(f"family: {ref} is a regressor (fit, predict, no sample); use it "
                              "with task: regression")
        if kind is not None and kind not in kinds:
            raise FamilyError(f"family: {ref} models {kind} data; task {task} needs a family "
                              f"of kind {' or '.join(k for k in kinds if k != 'regressor')}")
    if not _is_regressor(cls):
        missing = [m for m in _PROTOCOL if not callable(getattr(cls, m, None))]
        if missing:
            raise FamilyError(
                f"family: {ref} lacks {', '.join(missing)}; a family implements fit(X, *, "
                "sample_weight=None, rng), sample(n_samples, *, rng) and score_samples(X) "
                "(docs/guide.md, 'Your own model'), or is a regressor with fit and predict")
    model = getattr(cls, "Params", None)
    if model is not None and hasattr(model, "model_validate"):
        from pydantic import ValidationError

        try:
            params = model.model_validate(params).model_dump()
        except ValidationError as err:
            e = err.errors()[0]
            loc = ".".join(str(p) for p in e["loc"])
            raise FamilyError(f"family_params.{loc}: {e['msg']}") from None
        return FamilySpec(ref, cls, params)
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return FamilySpec(ref, cls, params)
    accepted = [n for n, p in signature.parameters.items()
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and n not in context]
    takes_any = any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
    for key in params:
        if key in context or (key not in accepted and not takes_any):
            close = difflib.get_close_matches(key, accepted, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise FamilyError(f"family_params.{key}: not a parameter of {ref}.{hint} Allowed: "
                              + (", ".join(accepted) or "none"))
    required = [n for n, p in signature.parameters.items()
                if p.default is p.empty and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
                and n not in params and n not in context]
    if required:
        raise FamilyError(f"family_params: {ref} needs {', '.join(required)}")
    return FamilySpec(ref, cls, params)
