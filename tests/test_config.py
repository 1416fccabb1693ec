"""Study files at the API level: ``load_study`` / ``Study`` reject bad input with ONE line naming the
field and the allowed values (``StudyError``), ``extends:`` and ``--set`` overrides work."""

from __future__ import annotations

import textwrap

import pytest

from modelcollapse.config import (Study, StudyError, apply_override, list_presets, load_study,
                                  study_hash)
from modelcollapse.registry import paradigms, tasks


def write(path, text: str):
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def study_error(source, overrides=()) -> str:
    """The StudyError message of loading ``source``; asserts it is one non-empty line."""
    with pytest.raises(StudyError) as info:
        load_study(str(source), list(overrides))
    message = str(info.value)
    assert message and "\n" not in message, repr(message)
    return message


# -- bad study files: (yaml text, substrings the one-line message must contain) ----------------

BAD_FILES = {
    "unknown_top_level_field": ("task: gaussian\nfoo: 1\n", ["foo", "unknown field"]),
    "unknown_task": ("task: gaussiann\n", ["task", "'gaussiann'", *tasks.names()]),
    "unknown_paradigm": ("task: gaussian\nparadigms: [replac]\n",
                         ["paradigms", "'replac'", *paradigms.names()]),
    "mix_without_real_fraction": ("task: gaussian\nparadigms: [{name: mix}]\n",
                                  ["paradigms", "real_fraction", "mix", "[0, 1]"]),
    "real_fraction_on_replace": (
        "task: gaussian\nparadigms: [{name: replace, real_fraction: 0.5}]\n",
        ["paradigms", "real_fraction", "mix", "replace"]),
    "fresh_real_on_accumulate": (
        "task: gaussian\nparadigms: [{name: accumulate, fresh_real: true}]\n",
        ["paradigms", "fresh_real", "accumulate"]),
    "n_seeds_wrong_type": ('task: gaussian\nn_seeds: "ten"\n', ["n_seeds", "integer"]),
    "n_seeds_zero": ("task: gaussian\nn_seeds: 0\n", ["n_seeds", "greater than or equal to 1"]),
    "n_iterations_negative": ("task: gaussian\nn_iterations: -3\n",
                              ["n_iterations", "greater than or equal to 1"]),
    "unknown_task_params_key": ("task: gaussian\ntask_params: {bogus: 1}\n",
                                ["task_params", "bogus", "unknown field"]),
    "task_params_value_not_allowed": (
        "task: gaussian\ntask_params: {covariance_estimator: foo}\n",
        ["task_params", "covariance_estimator", "mle", "unbiased"]),
    "task_params_out_of_range": ("task: discrete\ntask_params: {n_samples: 0}\n",
                                 ["task_params", "n_samples", "1"]),
    "dataset_not_allowed_vector": ("task: gaussian\ntask_params: {dataset: iris}\n",
                                   ["dataset", "synthetic", "wine", "digits"]),
    "dataset_not_allowed_regression": (
        "task: linear_regression\ntask_params: {dataset: wine}\n",
        ["dataset", "synthetic", "diabetes"]),
    "too_many_features_for_wine": ("task: gaussian\ntask_params: {dataset: wine, n_features: 20}\n",
                                   ["n_features", "1..13"]),
    "kde_bad_bandwidth": ("task: kde\ntask_params: {bandwidth: wide}\n",
                          ["bandwidth", "scott", "silverman"]),
    "both_task_and_tasks": ("task: gaussian\ntasks: [{task: discrete}]\n",
                            ["task", "tasks", "not both"]),
    "task_params_without_task": ("task_params: {n_samples: 3}\n", ["task_params", "task"]),
    "no_task_at_all": ("n_seeds: 3\n", ["task", *tasks.names()]),
    "duplicate_task_labels": ("tasks: [{task: gaussian}, {task: gaussian}]\n",
                              ["tasks", "unique", "gaussian-synthetic"]),
    "duplicate_paradigm_labels": ("task: gaussian\nparadigms: [replace, replace]\n",
                                  ["paradigms", "unique", "replace"]),
    "duplicate_mix_labels": (
        "task: gaussian\nparadigms: [{name: mix, real_fraction: 0.5}, "
        "{name: mix, real_fraction: 0.5}]\n", ["paradigms", "unique", "mix-0.5"]),
    "explicit_label_collides_with_default": (
        "task: gaussian\nparadigms: [replace, {name: accumulate, label: replace}]\n",
        ["paradigms", "unique", "replace"]),
    "bad_study_name": ('task: gaussian\nname: "a b"\n', ["name"]),
    "invalid_yaml": ("task: gaussian\nparadigms: [replace\nn_seeds: 3\n", ["YAML", "line 3"]),
    "not_a_mapping": ("- task\n- gaussian\n", ["mapping"]),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_study_file_gives_one_line_naming_field_and_allowed(tmp_path, case):
    text, needles = BAD_FILES[case]
    path = write(tmp_path / "bad.yaml", text)
    message = study_error(path)
    for needle in needles:
        assert needle in message, (case, needle, message)
    assert "Traceback" not in message


@pytest.mark.parametrize("text, field, known", [
    ("task: gaussian\nfoo: 1\n", "foo", ["n_seeds", "n_iterations", "paradigms"]),
    ("task: gaussian\ntask_params: {bogus: 1}\n", "bogus",
     ["n_samples", "n_features", "covariance_estimator"]),
])
def test_unknown_field_message_lists_allowed_fields(tmp_path, text, field, known):
    """The rule is 'name the field AND the allowed values': for an unknown key the allowed values
    are the known keys (at least some of them must be listed)."""
    message = study_error(write(tmp_path / "bad.yaml", text))
    assert field in message
    assert all(k in message for k in known), message


def test_study_model_validate_rejects_directly():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Study.model_validate({"task": "gaussian", "n_seeds": 0})
    with pytest.raises(ValidationError):
        Study.model_validate({"task": "nope"})
    with pytest.raises(ValidationError):
        Study.model_validate({"task": "gaussian", "surprise": 1})


# -- sources --------------------------------------------------------------------------------------

def test_file_not_found(tmp_path):
    message = study_error(tmp_path / "missing.yaml")
    assert "missing.yaml" in message and "not found" in message


def test_unknown_preset_lists_presets():
    message = study_error("no-such-preset")
    assert "no-such-preset" in message
    assert "default" in message
    for name in list_presets():
        assert name in message


def test_list_presets_has_default():
    presets = list_presets()
    assert "default" in presets
    assert presets["default"]  # a non-empty first line of description


def test_every_preset_validates():
    for name in list_presets():
        study = load_study(name)
        assert study.tasks and study.paradigms


def test_directory_as_study_file(tmp_path):
    (tmp_path / "dir.yaml").mkdir()
    assert "not found" in study_error(tmp_path / "dir.yaml")


def test_empty_file_asks_for_task(tmp_path):
    message = study_error(write(tmp_path / "empty.yaml", ""))
    assert "task" in message and "gaussian" in message


# -- extends ------------------------------------------------------------------------------------

def test_extends_child_overrides_parent(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "parent.yaml", """
        name: parent
        description: the parent
        task: gaussian
        task_params: {n_samples: 40, n_features: 3, covariance_estimator: unbiased}
        paradigms: [replace, accumulate]
        n_seeds: 5
        n_iterations: 3
        seed: 7
        """)
    write(tmp_path / "child.yaml", """
        extends: parent.yaml
        name: child
        n_seeds: 2
        task_params: {n_features: 2}
        paradigms: [replace]
        """)
    study = load_study("child.yaml")
    assert study.name == "child"
    assert study.n_seeds == 2                       # overridden
    assert study.n_iterations == 3 and study.seed == 7  # inherited
    assert study.description == "the parent"
    assert [p.label for p in study.paradigms] == ["replace"]  # lists replace, not merge
    (entry,) = study.tasks
    assert entry.task == "gaussian"
    assert entry.task_params["n_features"] == 2     # overridden inside task_params
    assert entry.task_params["n_samples"] == 40     # deep-merged from the parent
    assert entry.task_params["covariance_estimator"] == "unbiased"


def test_extends_child_task_replaces_parent_task_form(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "parent.yaml", "task: gaussian\ntask_params: {covariance_estimator: unbiased}\n")
    write(tmp_path / "child.yaml", "extends: parent.yaml\ntask: discrete\n")
    study = load_study("child.yaml")
    (entry,) = study.tasks
    assert entry.task == "discrete"
    assert "covariance_estimator" not in entry.task_params


def test_extends_a_preset_by_name(tmp_path):
    path = write(tmp_path / "child.yaml", "extends: default\nname: mine\nn_seeds: 3\n")
    study = load_study(str(path))
    default = load_study("default")
    assert study.name == "mine" and study.n_seeds == 3
    assert [t.label for t in study.tasks] == [t.label for t in default.tasks]
    assert study.n_iterations == default.n_iterations


def test_extends_relative_to_the_child_file_not_the_cwd(tmp_path, monkeypatch):
    """``extends: parent.yaml`` next to the child must work whatever the working directory is."""
    studies = tmp_path / "studies"
    studies.mkdir()
    write(studies / "parent.yaml", "task: gaussian\nn_seeds: 4\n")
    write(studies / "child.yaml", "extends: parent.yaml\nn_iterations: 2\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    study = load_study(str(studies / "child.yaml"))
    assert study.n_seeds == 4 and study.n_iterations == 2


def test_extends_cycle_is_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "a.yaml", "extends: b.yaml\ntask: gaussian\n")
    write(tmp_path / "b.yaml", "extends: a.yaml\n")
    assert "cycle" in study_error("a.yaml")


def test_extends_missing_parent(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "child.yaml", "extends: nowhere.yaml\ntask: gaussian\n")
    assert "nowhere.yaml" in study_error("child.yaml")


# -- --set overrides ------------------------------------------------------------------------------

def test_set_top_level_and_task_params(tmp_path):
    path = write(tmp_path / "s.yaml", "task: gaussian\ntask_params: {n_features: 2}\n")
    study = load_study(str(path), ["n_seeds=3", "task_params.n_samples=50",
                                   "paradigms=[replace, {name: mix, real_fraction: 0.25}]"])
    assert study.n_seeds == 3
    assert study.tasks[0].task_params["n_samples"] == 50
    assert study.tasks[0].task_params["n_features"] == 2  # untouched
    assert [p.label for p in study.paradigms] == ["replace", "mix-0.25"]


def test_set_task_params_creates_mapping(tmp_path):
    path = write(tmp_path / "s.yaml", "task: discrete\n")
    study = load_study(str(path), ["task_params.n_samples=50"])
    assert study.tasks[0].task_params["n_samples"] == 50


def test_set_into_tasks_list():
    study = load_study("default", ["tasks.0.task_params.n_samples=50", "tasks.1.label=g"])
    assert study.tasks[0].task_params["n_samples"] == 50
    assert study.tasks[1].label == "g"
    default = load_study("default")
    assert study.tasks[2].task_params == default.tasks[2].task_params


def test_set_tasks_index_on_a_one_task_study(tmp_path):
    """A one-task study resolves to ``tasks: [...]`` (that is what ``validate`` prints), so
    ``--set tasks.0.task_params.n_samples=50`` should address it too."""
    path = write(tmp_path / "s.yaml", "task: gaussian\n")
    study = load_study(str(path), ["tasks.0.task_params.n_samples=50"])
    assert study.tasks[0].task_params["n_samples"] == 50


def test_set_value_is_validated():
    message = study_error("default", ["n_seeds=ten"])
    assert "n_seeds" in message


@pytest.mark.parametrize("assignment, needles", [
    ("n_seeds", ["n_seeds", "key=value"]),
    ("=5", ["key=value"]),
    ("tasks.9.task_params.n_samples=5", ["tasks.9", "out of range"]),
    ("tasks.x.task_params.n_samples=5", ["out of range"]),
    ("paradigms.7=replace", ["paradigms.7", "out of range"]),
    ("name.sub=1", ["name", "not a mapping"]),
])
def test_bad_set_is_one_line_error(assignment, needles):
    message = study_error("default", [assignment])
    for needle in needles:
        assert needle in message, message


@pytest.mark.parametrize("assignment", [
    "paradigms.0.real_fraction=0.5",   # paradigms.0 is the string "replace" in the preset
    "paradigms.0.x.y=1",
    "tasks.0.task.x=1",
])
def test_set_through_a_scalar_list_item_is_a_study_error(assignment):
    """Descending through a list element that is a scalar must be a StudyError (one line),
    not a TypeError/AttributeError traceback."""
    study_error("default", [assignment])


def test_apply_override_in_place():
    data = {"tasks": [{"task": "gaussian"}]}
    apply_override(data, "tasks.0.task_params.n_samples=7")
    assert data == {"tasks": [{"task": "gaussian", "task_params": {"n_samples": 7}}]}


# -- resolved study -------------------------------------------------------------------------------

def test_resolved_fills_defaults_and_hash_is_stable(tmp_path):
    path = write(tmp_path / "s.yaml", "task: gaussian\n")
    a, b = load_study(str(path)), load_study(str(path), ["n_seeds=10"])  # 10 is the default
    resolved = a.resolved()
    assert "task" not in resolved and "task_params" not in resolved
    assert resolved["tasks"][0]["task_params"]["covariance_estimator"] == "mle"
    assert [p["label"] for p in resolved["paradigms"]] == ["replace", "accumulate"]
    assert study_hash(a) == study_hash(b)
    assert study_hash(a) != study_hash(load_study(str(path), ["n_seeds=11"]))


def test_named_scales(tmp_path):
    path = write(tmp_path / "s.yaml", """
        task: gaussian
        task_params: {n_features: 2, n_samples: 50}
        n_seeds: 3
        scales:
          paper: {n_seeds: 100, task_params.n_samples: 500}
        """)
    assert load_study(str(path)).n_seeds == 3
    paper = load_study(str(path), ["scale=paper"])
    assert (paper.n_seeds, paper.tasks[0].task_params["n_samples"]) == (100, 500)
    assert load_study(str(path), ["scale=paper", "n_seeds=7"]).n_seeds == 7  # --set wins
    message = study_error(path, ["scale=gpu"])
    assert "scale" in message and "cpu, paper" in message


def test_deep_presets_define_a_paper_scale():
    for name in ("gerstgrasser2024-vae", "gerstgrasser2024-lm", "gerstgrasser2024-diffusion"):
        study = load_study(name, ["scale=paper"])
        assert study.scale == "paper" and study.n_seeds >= 3


@pytest.mark.parametrize("source, overrides, hint", [
    ("default", ["n_seed=3"], "did you mean 'n_seeds'?"),
    ("kazdan-gaussian", [], "did you mean 'kazdan2024-gaussian'?"),
    ("default", ["paradigms=[acumulate]"], "did you mean 'accumulate'?"),
])
def test_typos_get_did_you_mean(source, overrides, hint):
    with pytest.raises(StudyError) as err:
        load_study(source, overrides)
    assert hint in str(err.value) and "\n" not in str(err.value)


def test_label_noise_true_as_the_guide_writes_it():
    study = load_study("gerstgrasser2024-linear-regression", ["task_params.label_noise=true"])
    assert study.tasks[0].task_params["label_noise"] == "true"
