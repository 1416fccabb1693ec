"""Study files: pydantic models (``extra="forbid"``), YAML presets with ``extends:``, overrides.

A study is one task (``task`` + ``task_params``) or several (``tasks:`` list), times paradigms,
times ``n_seeds`` replicate chains of ``n_iterations`` model-fitting iterations.  Every field has
a default; presets list only what differs.  Bad input raises ``StudyError`` with one line naming
the field and the allowed values.

Input rules (each breach is one line, ``StudyError``, before anything is written):

* a study file is UTF-8 text of at most ``MAX_STUDY_BYTES`` (1 MiB), YAML whose lists and
  mappings nest at most ``MAX_DEPTH`` levels, and no mapping repeats a key;
* numbers are read as in YAML 1.2: ``1e3`` is the float 1000.0 (PyYAML alone reads it as the
  text '1e3'); an integer field takes a float only when it is whole (``n_samples: 1e3``);
* no coercion between kinds: a number field refuses ``true`` and quoted text (``'12'``), a
  true/false field refuses numbers and text; every number is finite and, unless zero, normal
  (no NaN, inf or subnormal values);
* names that become file or directory names -- the study ``name`` (runs/<name>), task and
  paradigm ``label`` s (plots/<label>.png), given or derived -- match ``SAFE_NAME``: letters,
  digits and ``. _ - + @ =``, starting with a letter, digit or ``_``, at most ``MAX_NAME``
  characters (so no path separators, ``..`` or absolute paths);
* a ``"module:function"`` in a curation policy (``verify``'s ``verifier``) and a
  ``"module:Class"`` family are imported when the study is validated (the study file's folder
  first, then ``sys.path``): this runs the user's code (``Study.user_code`` lists it).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import sys
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, SerializeAsAny, ValidationError,
                      ValidationInfo, field_validator, model_serializer, model_validator)

from .curation import Curation, PolicyParams
from .paradigms import ParadigmParams
from .registry import RegistryError, paradigms, policies, tasks

__all__ = ["Study", "TaskEntry", "ParadigmSpec", "ProfileSettings", "StudyError", "load_study", "validate_study",
           "study_folders", "list_presets",
           "apply_override", "study_hash"]


class StudyError(ValueError):
    """A study file or value is invalid; the message is one line for the user."""


#: the largest study (or sweep) file read, in bytes
MAX_STUDY_BYTES = 1 << 20
#: the deepest nesting of lists and mappings in a study
MAX_DEPTH = 32
#: names used in file and directory names: study name, task and paradigm labels
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+@=-]*")
MAX_NAME = 128
NAME_RULE = ("letters, digits and . _ - + @ =, starting with a letter, digit or _, at most "
             f"{MAX_NAME} characters")


def name_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a study name or label (it names files and directories), or
    None when it can (``SAFE_NAME``, at most ``MAX_NAME`` characters)."""
    if not isinstance(value, str):
        return None  # pydantic reports the type
    if len(value) <= MAX_NAME and SAFE_NAME.fullmatch(value):
        return None
    return f"{value!r} cannot name a file; allowed: {NAME_RULE}"


def _safe_name(value: str | None) -> str | None:
    problem = name_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _scalar_kinds(annotation: Any) -> set[str]:
    """The kinds of scalar an annotation admits: ``bool``, ``int``, ``float``, ``str`` or
    ``other`` (a model, a mapping, a list, ``Any``)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _scalar_kinds(typing.get_args(annotation)[0])
    if origin is Literal:
        return {type(v).__name__ if type(v) in (bool, int, float, str) else "other"
                for v in typing.get_args(annotation)}
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_scalar_kinds(a) for a in typing.get_args(annotation)))
    if annotation is type(None):
        return set()
    if annotation in (bool, int, float, str):
        return {annotation.__name__}
    return {"other"}


def _list_item(annotation: Any) -> Any:
    """The item annotation of a ``list[X]`` (possibly ``| None``), else None."""
    if typing.get_origin(annotation) is list:
        return (typing.get_args(annotation) or (Any,))[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if typing.get_origin(arg) is list:
                return (typing.get_args(arg) or (Any,))[0]
    return None


def _scalar_problem(value: Any, kinds: set[str]) -> str | None:
    """Why ``value`` does not fit a field of these kinds without coercion, or None."""
    numeric = kinds & {"int", "float"}
    want = "an integer" if numeric == {"int"} else "a number"
    if isinstance(value, bool):
        if numeric and "bool" not in kinds and "other" not in kinds:
            return f"expected {want}, got {str(value).lower()} (a boolean)"
    elif isinstance(value, (int, float)):
        if isinstance(value, float) and numeric:
            if not math.isfinite(value):
                return f"expected a finite number, got {value}"
            if value != 0 and abs(value) < sys.float_info.min:
                return (f"expected a normal number, got {value!r} (subnormal: below "
                        f"{sys.float_info.min:.3g}, lost to rounding)")
        if kinds == {"bool"}:
            return f"expected true or false, got {value!r}"
    elif isinstance(value, str):
        if numeric and not kinds & {"str", "other"}:
            return f"expected {want}, got {value!r} (text; write numbers without quotes)"
        if kinds == {"bool"}:
            return f"expected true or false, got {value!r} (text)"
    return None


def _check_scalars(model: type[BaseModel], data: Any, prefix: str = "",
                   skip: tuple[str, ...] = ()) -> None:
    """Refuse coercions pydantic's lax mode would make, and non-finite numbers, in the raw
    mapping ``data`` of ``model``'s fields (recursing into nested models and lists).

    Raises
    ------
    ValueError
        ``"<prefix><field>: expected ..., got ..."`` for the first offending value.
    """
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        field = model.model_fields.get(key) if isinstance(key, str) else None
        if field is None or key in skip:
            continue  # unknown fields: pydantic reports them
        where = f"{prefix}{key}"
        problem = _scalar_problem(value, _scalar_kinds(field.annotation))
        if problem is not None:
            raise ValueError(f"{where}: {problem}")
        item = _list_item(field.annotation)
        if isinstance(value, list) and item is not None:
            sub = _model_in(item)
            for i, element in enumerate(value):
                if sub is not None:
                    _check_scalars(sub, element, f"{where}.{i}.")
                else:
                    problem = _scalar_problem(element, _scalar_kinds(item))
                    if problem is not None:
                        raise ValueError(f"{where}.{i}: {problem}")
        elif isinstance(value, dict):
            sub = _model_in(field.annotation)
            if sub is not None:
                _check_scalars(sub, value, f"{where}.")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ProfileSettings(BaseModel):
    """Thresholds and error control of the collapse profile (``modelcollapse.profile``).

    Every default is documented in docs/profile.md with its source.  Verdicts of one run are
    decided with family-wise error ``alpha`` (Holm 1979 over every test of the run).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    alpha: float = Field(0.05, gt=0, lt=0.5, description="family-wise error level of all "
                         "'occurs' verdicts of a run (and, separately, of all 'does not occur' "
                         "verdicts); Holm's step-down correction")
    correction: str = Field("holm", pattern="^(holm|none)$", description="multiplicity "
                            "correction over the verdicts of a run: holm | none")
    min_seeds: int = Field(5, ge=2, description="fewer replicate chains give 'inconclusive': "
                           "with n <= 4 seeds no sign-symmetric test reaches p < 0.05 "
                           "(2^-n >= 0.0625)")
    catastrophic_ratio: float = Field(
        2.0, gt=1, description="Def. 1: 'catastrophic' = risk (ratio of means) more than this "
        "many times the real-data fit's (risks in squared units)")
    catastrophic_nats: float = Field(
        1.0, gt=0, description="Def. 1 on log-likelihood risks (nats): 'catastrophic' = mean "
        "increase of more than this many nats per sample (per token for text), i.e. real data "
        "e^x times less likely; differences of log-losses do not depend on the data's units")
    variance_ratio: float = Field(
        0.5, gt=0, lt=1, description="Def. 4: variance (geometric mean over chains) below this "
        "fraction of iteration 0's counts as collapsed, whatever the curve's shape")
    efficiency: float = Field(
        0.9, gt=0, le=1, description="Def. 5: effective real sample size of the last iteration "
        "below this fraction of iteration 0's departs from the real-data scaling law")
    mode_loss: float = Field(0.05, ge=0, lt=1, description="Def. 6: share of iteration 0's "
                             "modes whose loss counts")
    tail_margin: float = Field(
        0.1, gt=0, description="Def. 7: relative growth of tail over bulk loss (or relative "
        "fall of tail recall) that counts")
    hallucination: float = Field(0.02, gt=0, description="Def. 8: increase of the "
                                 "hallucinated share (mass off the real support, 1 - k-NN "
                                 "precision) that counts")
    growth_blocks: int = Field(8, ge=4, le=32, description="Def. 3/4: blocks of iterations "
                               "whose means the growth models are fitted to")
    saturation_horizon: float = Field(
        1.0, gt=0, description="Def. 3/4: saturating models may approach their plateau with "
        "a timescale up to this many run lengths; slower saturation cannot be told from "
        "divergence at the run's horizon (a stated caveat)")


class GrowthSpec(_Strict):
    """How many synthetic samples each model-fitting iteration adds (position paper, Sec. 4).

    With m = ``n_synthetic`` (default: the real sample size), the batch drawn from model t has
    m (``constant``), m (t + 1) (``linear``) or round(m rate^t) (``geometric``) samples, so the
    real fraction of an accumulating pool falls like 1/t, 1/t^2 or geometrically.
    """

    kind: Literal["constant", "linear", "geometric"] = "constant"
    rate: float = Field(2.0, gt=1, description="geometric only: growth factor per iteration")

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value

    def sizes(self, m: int, n_iterations: int) -> list[int]:
        """Batch sizes drawn after iterations 0 .. n_iterations-2."""
        t = range(max(n_iterations - 1, 0))
        if self.kind == "linear":
            return [m * (i + 1) for i in t]
        if self.kind == "geometric":
            return [max(1, int(round(m * self.rate**i))) for i in t]
        return [m for _ in t]


class _PathError(ValueError):
    """A validator's one-line message that starts with a dotted path below the failing field;
    ``_first_error`` joins it to the field's location with a dot (``paradigms.0`` +
    ``real_fraction: ...``)."""


#: Keys every resolved paradigm carried before paradigms owned their settings, with their unset
#: values.  The resolved study still lists them for every paradigm (so the hashes of existing
#: studies, and with them their resumes, do not change), and input giving them unset (a
#: manifest's resolved study) is accepted for any paradigm.
_LEGACY_PARADIGM_KEYS = {"real_fraction": None, "fresh_real": False, "real_weight": None}


def _paradigm_params(name: str) -> type[ParadigmParams]:
    """The settings model of the registered paradigm ``name`` (none for a class without one)."""
    return getattr(paradigms.get(name), "Params", ParadigmParams)


def _holders(key: str) -> str:
    """`` (a setting of mix)``: the registered paradigms that have the setting ``key``."""
    names = []
    for name in paradigms.names():
        try:
            if key in _paradigm_params(name).model_fields:
                names.append(name)
        except (ImportError, AttributeError):  # a broken plug-in must not hide this message
            continue
    return f" (a setting of {', '.join(names)})" if names else ""


def _policy_params(i: int, item: Any, context: dict | None = None) -> PolicyParams:
    """Curation item ``i`` validated by its registered policy's ``Params`` (``context``: the
    validation context, with the study's folders as ``base_dir``)."""
    if isinstance(item, PolicyParams):
        return item
    example = "{policy: detect, recall: 0.9}"
    if not isinstance(item, dict):
        raise _PathError(f"{i}: expected a mapping such as {example}; policies: "
                         + ", ".join(policies.names()))
    if not isinstance(item.get("policy"), str):
        raise _PathError(f"{i}.policy: required, as in {example}; policies: "
                         + ", ".join(policies.names()))
    try:
        model = getattr(policies.get(item["policy"]), "Params", PolicyParams)
    except RegistryError as err:
        raise _PathError(f"{i}.policy: {err}") from None
    if not (isinstance(model, type) and issubclass(model, PolicyParams)):
        raise _PathError(f"{i}.policy: the Params of policy {item['policy']!r} must subclass "
                         "modelcollapse.curation.PolicyParams")
    try:
        _check_scalars(model, item, f"{i}.")
    except ValueError as err:
        raise _PathError(str(err)) from None
    try:
        return model.model_validate(item, context=context)
    except ValidationError as err:
        raise _PathError(_first_error(err, str(i), model)) from None


class ParadigmSpec(_Strict):
    """One data paradigm of a study; a bare string ``"replace"`` is short for ``{name: replace}``.

    The paradigm's own settings (the fields of its registered class's ``Params``, e.g. mix's
    ``real_fraction``) are written flat beside ``name`` and validated by that model (``params``);
    each curation item by its registered policy's ``Params`` (``curation.PolicyParams``).
    """

    model_config = ConfigDict(extra="allow")  # the paradigm's own settings, validated below

    name: str = Field(description="a registered paradigm: replace | accumulate | "
                      "accumulate-subsample | mix | real-matched (real data only, repeated to "
                      "accumulate's pool size: the matched-compute control of the deep "
                      "presets), or a plug-in")
    curation: list[SerializeAsAny[PolicyParams]] = Field(
        default_factory=list, description="policies applied in order, each {policy: <name>, "
        "<its settings>}: verify | detect | tail_oversample | ratio_cap | weights, or a plug-in")
    real_arrival: int = Field(0, ge=0, description="real rows joining the data at each "
                              "iteration t >= 1 (taken from the task's real pool)")
    initial_real: int | None = Field(None, ge=2, description="real rows at iteration 0 "
                                     "(default: the real pool minus the arrivals)")
    scraping: bool = Field(False, description="new data is an unlabelled mix: only a detect "
                           "policy tells synthetic from real")
    synthetic_growth: GrowthSpec | None = Field(
        None, description="this paradigm's synthetic growth (default: the study's)")
    label: str | None = Field(None, description="name in results and in file names (default "
                              "derived from settings; letters, digits and . _ - + @ =)")
    _params: ParadigmParams = PrivateAttr(default_factory=ParadigmParams)
    _base_dir: list[str] | None = PrivateAttr(None)

    @model_validator(mode="before")
    @classmethod
    def _settings(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value}
        name = value.get("name") if isinstance(value, dict) else None
        if not isinstance(name, str) or name not in paradigms:
            return value  # the field validators report it
        model = _paradigm_params(name)
        try:
            _check_scalars(cls, value, skip=("curation",))
        except ValueError as err:
            raise _PathError(str(err)) from None
        own = {k: v for k, v in value.items() if k not in cls.model_fields}
        for key, unset in _LEGACY_PARADIGM_KEYS.items():
            if key in own and key not in model.model_fields and own[key] is unset:
                del own[key]
        for key in own:
            if key not in model.model_fields:
                allowed = ["name", *model.model_fields, *list(cls.model_fields)[1:]]
                raise _PathError(f"{key}: unknown field for {name}{_holders(key)}; allowed: "
                                 + ", ".join(allowed))
        try:
            _check_scalars(model, own)
            params = model.model_validate(own)
        except ValidationError as err:
            raise _PathError(_first_error(err, model=model)) from None
        except ValueError as err:
            raise _PathError(str(err)) from None
        common = {k: v for k, v in value.items() if k in cls.model_fields}
        return {**common, **params.model_dump()}

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in paradigms:
            close = difflib.get_close_matches(name, paradigms.names(), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{name!r} is not a paradigm{hint}; allowed: "
                             f"{', '.join(paradigms.names())}")
        return name

    @field_validator("curation", mode="before")
    @classmethod
    def _policies(cls, items: Any, info: ValidationInfo) -> Any:
        if not isinstance(items, list):
            return items  # pydantic reports it
        return [_policy_params(i, item, info.context) for i, item in enumerate(items)]

    @field_validator("label")
    @classmethod
    def _label_names_files(cls, label: str | None) -> str | None:
        return _safe_name(label)

    @model_validator(mode="after")
    def _derived(self, info: ValidationInfo):
        self._base_dir = (info.context or {}).get("base_dir")
        self._params = _paradigm_params(self.name).model_validate(self.model_extra or {})
        kinds = [p.policy for p in self.curation]
        if len(set(kinds)) < len(kinds):
            raise _PathError(f"curation: each policy at most once, got {', '.join(kinds)}")
        if self.label is None:
            self.label = self._params.label(self.name)
            for p in self.curation:
                self.label += "+" + p.label()
            if self.real_arrival:
                self.label += f"+arrival{self.real_arrival}"
            if self.scraping:
                self.label += "+scraping"
            if self.synthetic_growth is not None:
                self.label += f"+{self.synthetic_growth.kind}"
            problem = name_problem(self.label)
            if problem is not None:
                raise _PathError(f"label: {problem} (derived from the paradigm's settings); "
                                 "give the paradigm a label")
        return self

    @model_serializer(mode="wrap")
    def _flat(self, handler) -> dict[str, Any]:
        data = handler(self)
        own = {k: data.pop(k) for k in (self.model_extra or {})}
        return {"name": data.pop("name"), **_LEGACY_PARADIGM_KEYS, **own, **data}

    @property
    def params(self) -> ParadigmParams:
        """The paradigm's own settings, validated by its registered ``Params``."""
        return self._params

    @property
    def curated(self) -> bool:
        """Whether the chain runs through the curated data pool (``engine.curation``)."""
        return bool(self.curation or self.real_arrival or self.initial_real is not None
                    or self.scraping)

    @property
    def uses_sample_weight(self) -> bool:
        """Whether training rows get unequal sample weights (mix with ``real_weight``, or a
        weighting policy: weights, tail_oversample, detect with action downweight), so the
        family must honour ``sample_weight``."""
        return self._params.uses_sample_weight or any(p.uses_sample_weight
                                                      for p in self.curation)

    def build(self):
        """The paradigm object the engine runs (``paradigms.Paradigm``), with its pipeline
        (``curation.Curation``) as ``.curation`` when curated."""
        paradigm = paradigms.get(self.name)(**self._params.model_dump())
        if self.curated:
            built = [policies.get(p.policy)(**p.model_dump(exclude={"policy"}))
                     for p in self.curation]
            for policy in built:  # a policy importing user code looks in the study's folders
                if hasattr(policy, "base_dir"):
                    policy.base_dir = self._base_dir
            paradigm.curation = Curation(built, self.real_arrival, self.initial_real,
                                         self.scraping)
        return paradigm


class TaskEntry(_Strict):
    """One task of a study: a recipe (``task``, validated ``task_params``) and, for recipes that
    take one, a model family (``family``: registered name or ``"module:Class"``, with
    ``family_params``; ``families.plugin``)."""

    task: str = Field(description="a registered task, e.g. gaussian or density")
    task_params: dict[str, Any] = Field(default_factory=dict)
    family: str | None = Field(
        None, description="density / regression: the model family -- a registered name (e.g. "
        "kde) or 'module:Class' (the user's code, imported from the study file's folder, then "
        "sys.path)")
    family_params: dict[str, Any] = Field(default_factory=dict,
                                          description="keyword arguments of the family")
    label: str | None = Field(None, description="name in results and in file names (default: "
                              "task-dataset; letters, digits and . _ - + @ =)")
    _base_dir: list[str] | None = PrivateAttr(None)

    @field_validator("label")
    @classmethod
    def _label_names_files(cls, label: str | None) -> str | None:
        return _safe_name(label)

    @field_validator("task")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in tasks:
            raise ValueError(f"{name!r} is not a task; allowed: {', '.join(tasks.names())}")
        return name

    @model_validator(mode="after")
    def _params(self, info: ValidationInfo):
        base_dir = (info.context or {}).get("base_dir")
        self._base_dir = base_dir
        params_model = tasks.get(self.task).Params
        _check_scalars(params_model, self.task_params, "task_params.")
        try:
            params = params_model.model_validate(self.task_params, context=self._context())
        except ValidationError as err:
            raise ValueError(_first_error(err, "task_params", params_model)) from None
        self.task_params = params.model_dump()
        self.family_spec()
        return self

    def _context(self) -> dict[str, Any]:
        return {"base_dir": self._base_dir}

    def params(self):
        """The validated ``task_params`` model (data files resolved from the study's folder)."""
        return tasks.get(self.task).Params.model_validate(self.task_params,
                                                          context=self._context())

    def family_spec(self):
        """The resolved family (``families.plugin.FamilySpec``) of a recipe; None for a task with
        a fixed family.

        Raises
        ------
        ValueError
            A family for a task that fixes its own, or a family the recipe cannot feed.
        """
        from .families.plugin import FamilyError, family_spec

        task = tasks.get(self.task)
        kinds = getattr(task, "family_kinds", None)
        if kinds is None:
            if self.family is not None or self.family_params:
                raise ValueError(f"family: task {self.task} always runs its own family "
                                 f"({task.family}); choose a family with task: density (vector "
                                 "data) or regression")
            return None
        try:
            return family_spec(self.family or task.family, self.family_params,
                               base_dir=self._base_dir, kinds=kinds, task=self.task,
                               context=getattr(task, "family_context", ()))
        except FamilyError as err:
            raise ValueError(str(err)) from None

    def build(self, streams):
        """The task (``tasks.base.Task``) for the replicates of ``streams``, labelled."""
        task_cls = tasks.get(self.task)
        spec = self.family_spec()
        params = self.params()
        task = (task_cls.build(params, streams) if spec is None
                else task_cls.build(params, streams, family=spec))
        task.name = self.label
        return task

    def default_label(self) -> str:
        """``task-dataset`` (a data file by its stem), or ``family-dataset`` when the study names
        the family of a recipe."""
        ds = self.task_params.get("dataset")
        if isinstance(ds, str) and ds:
            ds = Path(ds).stem if ("/" in ds or "." in ds) else ds
        head = self.task if self.family is None else self.family_spec().name
        return f"{head}-{ds}" if ds else head

    def family_class(self) -> type | None:
        """The class of the family the task runs (a fixed family from the registry)."""
        spec = self.family_spec()
        if spec is not None:
            return spec.cls
        from .registry import families

        name = getattr(tasks.get(self.task), "family", None)
        return families.get(name) if name in families else None


class Study(_Strict):
    """A validated study (see the README for every field)."""

    name: str = Field("study", description="study name, the run directory's default name "
                      "runs/<name> (letters, digits and . _ - + @ =)")
    description: str = ""
    task: str | None = Field(None, description="shorthand for a one-task study")
    task_params: dict[str, Any] | None = None
    family: str | None = Field(None, description="shorthand for a one-task study's family")
    family_params: dict[str, Any] | None = None
    tasks: list[TaskEntry] | None = None
    paradigms: list[ParadigmSpec] = Field(
        default_factory=lambda: [ParadigmSpec(name="replace"), ParadigmSpec(name="accumulate")],
        min_length=1)
    n_iterations: int = Field(10, ge=1, le=1_000_000, description="model-fitting iterations")
    n_seeds: int = Field(10, ge=1, le=1_000_000, description="replicate chains")
    seed: int = Field(0, ge=0, description="root seed")
    keep_seeds: int = Field(
        10_000, ge=0, le=1_000_000, description="per-seed rows are written for the first "
        "keep_seeds seeds; with more seeds, the summary, collapse profile and curves come from "
        "exact aggregates of all seeds streamed block by block (memory independent of n_seeds; "
        "`run` only: a sweep keeps every seed's rows)")
    n_synthetic: int | None = Field(
        None, ge=1, description="synthetic samples per iteration (default: real sample size)")
    synthetic_growth: GrowthSpec = Field(default_factory=GrowthSpec,
                                         description="constant | linear | geometric")
    profile: ProfileSettings = Field(
        default_factory=ProfileSettings, description="thresholds and error control of the "
        "collapse profile (alpha, min_seeds, catastrophic_ratio, ...; docs/profile.md)")
    stop_when_collapsed: bool = Field(
        False, description="end a chain early once every replicate has collapsed to a point "
        "(single_outcome / zero_variance); n_iterations is then the cap")
    scale: str = Field("cpu", description="a named size defined under `scales` (e.g. paper); "
                       "'cpu' is the study as written")
    scales: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="named sizes: {name: {dotted.key: value}}, applied "
        "by load_study when `scale` names one (explicit --set values win)")

    @field_validator("name")
    @classmethod
    def _name_names_files(cls, name: str) -> str:
        return _safe_name(name)

    @model_validator(mode="before")
    @classmethod
    def _one_task_form(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        _check_scalars(cls, data, skip=("tasks", "paradigms"))
        data = dict(data)
        if data.get("task") is not None:
            if data.get("tasks"):
                raise ValueError("give either task (+ task_params) or tasks, not both")
            entry = {"task": data["task"], "task_params": data.get("task_params") or {}}
            for key in ("family", "family_params"):
                if data.get(key) is not None:
                    entry[key] = data[key]
            data["tasks"] = [entry]
        elif data.get("task_params") is not None:
            raise ValueError("task_params needs task")
        elif data.get("family") is not None or data.get("family_params") is not None:
            raise ValueError("family needs task (a recipe such as density); in a tasks list "
                             "give each task its family")
        elif not data.get("tasks"):
            raise ValueError("task is required (or a tasks list); allowed tasks: "
                             + ", ".join(tasks.names()))
        data["task"] = data["task_params"] = data["family"] = data["family_params"] = None
        return data

    @model_validator(mode="after")
    def _labels(self):
        if self.scale != "cpu" and self.scale not in self.scales:
            raise ValueError(f"scale: {self.scale!r} is not defined by this study; allowed: "
                             + ", ".join(["cpu", *self.scales]))
        for i, entry in enumerate(self.tasks):
            if entry.label is None:
                entry.label = entry.default_label()
                if entry.task_params.get("sample_output") == "mean":
                    entry.label += "-mean"  # decoder-mean samples: a different sampler
                problem = name_problem(entry.label)
                if problem is not None:
                    raise ValueError(f"tasks.{i}.label: {problem} (derived from the task, "
                                     "family and dataset names); rename the data file or give "
                                     "the task a label (in a tasks: list)")
        for what, labels in (("tasks", [t.label for t in self.tasks]),
                             ("paradigms", [p.label for p in self.paradigms])):
            if len({label.casefold() for label in labels}) != len(labels):
                raise ValueError(f"{what}: labels must be unique, ignoring case (they name "
                                 f"files), got {labels}")
        if self.stop_when_collapsed and self.n_seeds > self.keep_seeds:
            # a block of chains stops when all of ITS chains are absorbed: blocks would have
            # different lengths, and the streamed aggregates need every chain's n_iterations
            raise ValueError(f"stop_when_collapsed: not with n_seeds ({self.n_seeds}) > "
                             f"keep_seeds ({self.keep_seeds}), a streamed run; set "
                             "stop_when_collapsed false or keep_seeds >= n_seeds")
        self._check_capabilities()
        return self

    def _check_capabilities(self) -> None:
        """Weighting curation on a family whose ``fit`` has no ``sample_weight`` is an error
        (it would be silently ignored)."""
        from .families.plugin import supports_sample_weight

        weighted = [(i, p) for i, p in enumerate(self.paradigms)
                    if getattr(p, "uses_sample_weight", False)]
        if not weighted:
            return
        classes = [(entry, entry.family_class()) for entry in self.tasks]  # resolved once
        for i, paradigm in weighted:
            for entry, cls in classes:
                if cls is not None and not supports_sample_weight(cls):
                    raise ValueError(
                        f"paradigms.{i}: {paradigm.label} weights samples, but family "
                        f"{entry.family or cls.__name__} of task {entry.label} has no "
                        "sample_weight in fit (weights would be ignored); drop the weighting "
                        "(weights, tail_oversample, detect action: downweight, mix real_weight) "
                        "or give the family sample_weight support")

    def user_code(self) -> list[str]:
        """Where this study imports and runs the user's own code: ``"module:attribute"`` families
        (with the file they come from) and curation functions such as a ``verifier``, as
        ``"field = value"`` lines (``modelcollapse validate`` prints them)."""
        out = []
        for i, entry in enumerate(self.tasks):
            if entry.family is not None and ":" in entry.family:
                origin = entry.family_spec().provenance().get("file")
                out.append(f"tasks.{i}.family = {entry.family}"
                           + (f" ({origin})" if origin else ""))
        for i, paradigm in enumerate(self.paradigms):
            for j, policy in enumerate(paradigm.curation):
                for key, value in policy.model_dump().items():
                    if isinstance(value, str) and re.fullmatch(r"[\w.]+:[\w.]+", value):
                        module = sys.modules.get(value.partition(":")[0])
                        origin = getattr(module, "__file__", None)
                        out.append(f"paradigms.{i}.curation.{j}.{key} = {value}"
                                   + (f" ({Path(origin).resolve()})" if origin else ""))
        return out

    def resolved(self) -> dict[str, Any]:
        """The study with every default filled in (what the manifest stores)."""
        return self.model_dump(mode="json",
                               exclude={"task", "task_params", "family", "family_params"})


#: fields added after studies were first hashed, with their defaults: left out of the hash at
#: their default, so a study written before them keeps its hash (its runs still resume)
LATER_FIELDS = {"keep_seeds": 10_000}


def study_hash(study: Study) -> str:
    """SHA-256 of the resolved study (canonical JSON; ``LATER_FIELDS`` at their defaults left
    out), first 16 hex digits."""
    resolved = study.resolved()
    for key, default in LATER_FIELDS.items():
        if resolved.get(key) == default:
            del resolved[key]
    text = json.dumps(resolved, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- loading ---------------------------------------------------------------------------------

def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as ``list[X] | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _allowed_fields(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the (nested) model at ``loc[:-1]``."""
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        sub = _model_in(field.annotation) if field is not None else None
        if sub is None:
            return []
        model = sub
    return list(model.model_fields)


def _first_error(err: ValidationError, prefix: str = "",
                 model: type[BaseModel] | None = None) -> str:
    e = err.errors()[0]
    raw_loc = tuple(p for p in e["loc"] if not str(p).startswith("function-"))
    loc = ".".join(x for x in (prefix, ".".join(str(p) for p in raw_loc)) if x)
    msg = e["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if e["type"] == "extra_forbidden":
        allowed = _allowed_fields(model, raw_loc) if model is not None else []
        close = difflib.get_close_matches(str(raw_loc[-1]), allowed, n=1) if raw_loc else []
        msg = ("unknown field" + (f"; did you mean {close[0]!r}?" if close else "")
               + (f"; allowed: {', '.join(allowed)}" if allowed else ""))
    if prefix and not raw_loc and re.match(r"^[a-z_]\w*: ", msg):
        return f"{prefix}.{msg}"  # a model-level check that names its own field
    if (msg.startswith(("task_params.", "family:", "family_params"))
            or isinstance(e.get("ctx", {}).get("error"), _PathError)):
        # a nested model's error, already "field: message"
        return f"{loc}.{msg}" if loc else msg
    return f"{loc}: {msg}" if loc else msg


def list_presets() -> dict[str, str]:
    """Preset name -> the first clause of its description (its source)."""
    out = {}
    for entry in sorted(resources.files("modelcollapse.presets").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            data = yaml.safe_load(entry.read_text()) or {}
            text = " ".join(str(data.get("description", "")).split())
            out[entry.name[:-5]] = re.split(r"(?<! al)(?<!Sec)\. |: ", text)[0]
    return out


class _StudyLoader(yaml.SafeLoader):
    """PyYAML's safe loader for study files: a key repeated in one mapping is an error (plain
    PyYAML keeps the last), and numbers in exponent form without a dot or an exponent sign
    (``1e3``, ``2.5e-3``, YAML 1.2) are floats (plain PyYAML reads them as text)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                    continue  # merge keys may override; complex keys: PyYAML decides
                key = self.construct_object(key_node)
                if key in first:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} given twice (first on line {first[key] + 1}); "
                        "keep one", key_node.start_mark)
                first[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


_StudyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$"), list("-+.0123456789"))


def _size(n_bytes: int) -> str:
    """``n_bytes`` in MiB (KiB below one MiB), e.g. '1 MiB', '47.7 MiB'."""
    value, unit = (n_bytes / 2**20, "MiB") if n_bytes >= 2**20 else (n_bytes / 1024, "KiB")
    return f"{value:.1f}".removesuffix(".0") + f" {unit}"


class _NestingError(StudyError):
    """Nesting too deep, or a structure containing itself."""


def _too_deep(source: str) -> StudyError:
    return _NestingError(f"{source}: lists and mappings nested more than {MAX_DEPTH} levels deep; "
                      "a study needs a few")


def _check_depth(data: Any, source: str) -> None:
    """Refuse nesting deeper than ``MAX_DEPTH`` and a list or mapping that contains itself (a
    recursive YAML alias); shared (aliased) parts are walked once."""
    height: dict[int, int] = {}
    active: set[int] = set()

    def walk(node: Any, level: int) -> int:
        if not isinstance(node, (dict, list)):
            return 0
        key = id(node)
        if key in active:
            raise _NestingError(f"{source}: a list or mapping contains itself (a recursive YAML "
                             "alias); write the value out")
        if key not in height:
            if level >= MAX_DEPTH:
                raise _too_deep(source)
            active.add(key)
            children = node.values() if isinstance(node, dict) else node
            height[key] = 1 + max((walk(c, level + 1) for c in children), default=0)
            active.discard(key)
        if level + height[key] > MAX_DEPTH:
            raise _too_deep(source)
        return height[key]

    walk(data, 0)


def _parse(text: str, source: str) -> Any:
    """The YAML document ``text`` (``_StudyLoader``), nesting checked.

    Raises
    ------
    StudyError
        One line: invalid YAML (with its line), a repeated key, too deep.
    """
    try:
        data = yaml.load(text, Loader=_StudyLoader)  # noqa: S506 -- a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise StudyError(f"{source}: not valid YAML{where}: "
                         + " ".join(str(problem).split())) from None
    except RecursionError:
        raise _too_deep(source) from None
    _check_depth(data, source)
    return data


def _read_file(path: Path, source: str) -> str:
    """The text of study file ``path``: at most ``MAX_STUDY_BYTES``, UTF-8.

    Raises
    ------
    StudyError
        One line: too large (checked before reading), unreadable, not UTF-8 (with the first
        bad byte and its offset).
    """
    try:
        size = path.stat().st_size
        if size > MAX_STUDY_BYTES:
            raise StudyError(f"{source}: {_size(size)}; a study file is at most "
                             f"{_size(MAX_STUDY_BYTES)}")
        with path.open("rb") as handle:
            raw = handle.read(MAX_STUDY_BYTES + 1)
    except OSError as exc:
        raise StudyError(f"{source}: cannot be read ({exc.strerror or exc})") from None
    if len(raw) > MAX_STUDY_BYTES:
        raise StudyError(f"{source}: more than {_size(MAX_STUDY_BYTES)}; a study file is at most "
                         f"{_size(MAX_STUDY_BYTES)}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StudyError(f"{source}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                         f"{exc.start}); save it as UTF-8") from None


def _read(source: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    path = Path(source)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise StudyError(f"study file {source!r} not found")
        text = _read_file(path, source)
    else:
        res = resources.files("modelcollapse.presets") / f"{source}.yaml"
        if not res.is_file():
            names = list(list_presets())
            close = difflib.get_close_matches(source, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise StudyError(f"{source!r} is neither a study file nor a preset{hint}; presets: "
                             + ", ".join(names))
        text = res.read_text()
    data = _parse(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise StudyError(f"{source}: a study file must be a mapping of fields")
    parent = data.pop("extends", None)
    if parent is not None:
        parent = str(parent)
        beside = path.parent / parent
        if path.is_file() and not Path(parent).is_absolute() and beside.is_file():
            parent = str(beside)  # a relative parent file is found next to the child
        if parent in seen or parent == source:
            raise StudyError(f"extends: cycle through {parent!r}")
        data = _merge(_read(parent, seen + (source,)), data)
    return data


def _merge(base: dict, over: dict) -> dict:
    """Deep-merge ``over`` into ``base``; a child naming ``task`` or ``tasks`` replaces the
    parent's whole task form."""
    out = dict(base)
    if "task" in over or "tasks" in over:
        for key in ("task", "task_params", "tasks"):
            out.pop(key, None)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def apply_override(data: dict[str, Any], assignment: str) -> dict[str, Any]:
    """Apply ``key.sub=value`` (value parsed as YAML) to a raw study dict, in place."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key:
        raise StudyError(f"--set {assignment!r}: expected key=value, e.g. n_seeds=20")
    try:
        value = _parse(raw, f"--set {key}")
    except _NestingError:
        raise
    except StudyError:
        value = raw  # not YAML: the text itself
    return _set_path(data, key, value)


def _set_path(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """Set the dotted ``key`` (list items by index) of a raw study dict to ``value``, in place."""
    parts = key.split(".")
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = ".".join(parts[:i]) or "the study"
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise StudyError(f"--set {key}: {where} has no item {part!r} (out of range; "
                                 f"allowed: 0..{len(node) - 1})")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
        else:
            raise StudyError(f"--set {key}: {where} is {node!r}, not a mapping; write it in full, "
                             f"e.g. --set {where}={{name: ..., ...}}")
    return data


def study_folders(source: str | None) -> list[str]:
    """The folder of study file ``source`` and of every file it ``extends``, nearest first
    (where its relative data files and ``module:Class`` families are looked up); [] for a
    preset."""
    folders: list[str] = []
    seen: set[str] = set()
    while source is not None and Path(source).is_file() and source not in seen:
        seen.add(source)
        path = Path(source).resolve()
        folders.append(str(path.parent))
        try:
            parent = (_parse(_read_file(path, source), source) or {}).get("extends")
        except (StudyError, AttributeError):
            break
        if parent is None:
            break
        beside = path.parent / str(parent)
        source = str(beside) if beside.is_file() else str(parent)
    return list(dict.fromkeys(folders))


def validate_study(data: dict[str, Any], base_dir: str | Path | list | None = None) -> Study:
    """``Study.model_validate(data)``, with relative data files and ``"module:Class"`` families
    looked up in ``base_dir`` -- a folder or a list of folders (``study_folders``; default the
    current directory) -- before the current directory and ``sys.path``.

    Raises
    ------
    pydantic.ValidationError
    """
    dirs = base_dir if isinstance(base_dir, list) else [base_dir or Path.cwd()]
    return Study.model_validate(data, context={"base_dir": [str(Path(d).resolve())
                                                            for d in dirs]})


def load_study(source: str | dict | None = None,
               overrides: list[str] | tuple[str, ...] = ()) -> Study:
    """Load a preset (by name), study file or mapping of study fields, apply ``key=value``
    overrides, validate.

    Raises
    ------
    StudyError
        One line naming the field and the allowed values.
    """
    if isinstance(source, dict):  # the fields of a study file (the Python API)
        import copy

        _check_depth(source, "the study")
        data = copy.deepcopy(source)
        if data.get("extends") is not None:
            data = _merge(_read(str(data.pop("extends"))), data)
    else:
        data = _read(source or "default")
    if data.get("task") is not None and any(a.startswith("tasks.") for a in overrides):
        # address a one-task study as tasks.0.*, as `validate` prints it
        entry = {"task": data.pop("task"), "task_params": data.pop("task_params", None) or {}}
        entry.update({k: data.pop(k) for k in ("family", "family_params") if k in data})
        data["tasks"] = [entry]
    for assignment in overrides:
        apply_override(data, assignment)
    scale, scales = data.get("scale", "cpu"), data.get("scales") or {}
    if scale != "cpu" and isinstance(scales, dict) and isinstance(scales.get(scale), dict):
        for key, value in scales[scale].items():  # the named size, then the user's --set again
            _set_path(data, str(key), value)
        for assignment in overrides:
            apply_override(data, assignment)
    _check_depth(data, "the study")
    folders = study_folders(source) if isinstance(source, str) else []  # a dict: the cwd
    try:
        return validate_study(data, folders or None)
    except ValidationError as err:
        message = _first_error(err, model=Study)
        if data.get("task") is not None and message.startswith("tasks.0."):
            message = message[len("tasks.0."):]  # the user wrote the one-task form
        raise StudyError(message) from None
    except RegistryError as err:
        raise StudyError(str(err)) from None
