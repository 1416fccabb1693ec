"""Study input hardening (issue 12, findings 2, 3 and the study-input cases of 7): names that
become file names, user code named by an import path, and malformed study files -- each one
line, exit 2, nothing written, whether through `validate`, `run` or `sweep`."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from modelcollapse.cli import app
from modelcollapse.config import (MAX_STUDY_BYTES, StudyError, list_presets, load_study,
                                  study_hash)

TINY = """\
task: gaussian
task_params: {n_samples: 20, n_features: 2, n_test: 50}
paradigms: [replace]
n_iterations: 2
n_seeds: 2
"""
TASK = "{n_samples: 20, n_features: 2, n_test: 50}"


def _cli(*args: str, cwd: Path | None = None, monkeypatch=None):
    if cwd is not None:
        monkeypatch.chdir(cwd)
    res = CliRunner().invoke(app, list(args))
    return res


def _one_line_error(res, *needles: str) -> str:
    assert res.exit_code == 2, (res.exit_code, res.output)
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    assert "Traceback" not in res.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _study(tmp_path: Path, text: str, name: str = "study.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# -- finding 2: everything under --out --------------------------------------------------------

@pytest.mark.parametrize("field, yaml_text", [
    ("tasks.0.label", "tasks: [{task: gaussian, label: 'LABEL', task_params: " + TASK + "}]\n"
                      "paradigms: [replace]\nn_iterations: 2\nn_seeds: 2\n"),
    ("paradigms.0.label", "tasks: [{task: gaussian, task_params: " + TASK + "}]\n"
                          "paradigms: [{name: replace, label: 'LABEL'}]\n"
                          "n_iterations: 2\nn_seeds: 2\n"),
    ("name", "name: 'LABEL'\n" + TINY),
])
@pytest.mark.parametrize("label", ["{outside}/PWNED", "../../x", "no/such/dir", "..", ".", "-x",
                                   ".hidden", "a b", "a\\b", "x" * 129, "café", ""])
def test_names_that_become_paths_are_refused_before_anything_is_written(
        tmp_path, monkeypatch, field, yaml_text, label):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "PWNED.png").write_text("original")
    label = label.replace("{outside}", str(outside))
    path = _study(tmp_path, yaml_text.replace("LABEL", label.replace("'", "''")))
    work = tmp_path / "work" / "deeper"
    work.mkdir(parents=True)
    res = _cli("run", str(path), "--out", str(work / "out"), "-q", cwd=work,
               monkeypatch=monkeypatch)
    _one_line_error(res, f"{field}:", "letters, digits and . _ - + @ =")
    assert not (work / "out").exists()
    assert (outside / "PWNED.png").read_text() == "original"
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(
        ["outside", "PWNED.png", "study.yaml", "work", "deeper"])


def test_name_dotdot_without_out_writes_nothing_in_the_current_directory(tmp_path, monkeypatch):
    path = _study(tmp_path, "name: '..'\n" + TINY)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    _one_line_error(_cli("run", str(path), "-q", cwd=cwd, monkeypatch=monkeypatch), "name:")
    assert list(cwd.iterdir()) == []


def test_derived_task_label_from_a_data_file_name_is_checked(tmp_path):
    (tmp_path / "wine data (v2).csv").write_text(
        "a,b\n" + "\n".join(f"{i},{i * i % 7}" for i in range(40)) + "\n")
    path = _study(tmp_path, """\
        task: density
        family: gaussian
        task_params: {dataset: 'wine data (v2).csv', n_samples: 20}
        paradigms: [replace]
        """)
    with pytest.raises(StudyError, match=r"^label: 'gaussian-wine data \(v2\)' cannot name a "
                       r"file.*derived.*give the task a label"):
        load_study(str(path))
    (tmp_path / "wine_v2.csv").write_text((tmp_path / "wine data (v2).csv").read_text())
    ok = load_study(str(path), ["task_params.dataset=wine_v2.csv"])
    assert ok.tasks[0].label == "gaussian-wine_v2"


def test_derived_paradigm_label_from_a_plugin_is_checked(tmp_path):
    """A plug-in paradigm's label() builds the default label from its settings; an unsafe one
    is refused with the advice to give a label."""
    from pydantic import Field

    from modelcollapse.paradigms import ParadigmParams
    from modelcollapse.paradigms.replace import Replace
    from modelcollapse.registry import paradigms

    class SlashParams(ParadigmParams):
        where: str = Field("a", description="text that ends up in the label")

        def label(self, name: str) -> str:
            return f"{name}-{self.where}"

    class Slash(Replace):
        Params = SlashParams

        def __init__(self, where: str = "a") -> None:
            super().__init__()

    paradigms.register("slash-test", Slash)
    try:
        path = _study(tmp_path, TINY)
        with pytest.raises(StudyError, match=r"^paradigms\.0\.label: 'slash-test-\.\./x' cannot "
                           r"name a file.*derived from the paradigm's settings"):
            load_study(str(path), ["paradigms=[{name: slash-test, where: ../x}]"])
        study = load_study(str(path), ["paradigms=[{name: slash-test, where: ../x, label: ok}]"])
        assert study.paradigms[0].label == "ok"
        assert load_study(str(path), ["paradigms=[slash-test]"]).paradigms[0].label == "slash-test-a"
    finally:
        paradigms._entries.pop("slash-test")


def test_safe_labels_are_kept_and_labels_differ_ignoring_case(tmp_path):
    path = _study(tmp_path, """\
        tasks:
          - {task: gaussian, label: 'g@p1=x+y_z.v-2', task_params: {n_samples: 20}}
        paradigms: [replace, {name: accumulate, label: 'A_1'}]
        """)
    study = load_study(str(path))
    assert study.tasks[0].label == "g@p1=x+y_z.v-2" and study.paradigms[1].label == "A_1"
    with pytest.raises(StudyError, match=r"^paradigms: labels must be unique, ignoring case"):
        load_study(str(path), ["paradigms.0={name: replace, label: a_1}"])


def test_every_preset_keeps_its_labels_and_hash():
    """The name rule keeps every shipped study valid, with the hash it had (resumes of runs
    made before it still match).  Update PRESET_HASHES only with a deliberate preset change."""
    hashes = {}
    for name in list_presets():
        study = load_study(name)
        hashes[name] = study_hash(study)
        for scale in study.scales:
            hashes[f"{name}@{scale}"] = study_hash(load_study(name, [f"scale={scale}"]))
    assert hashes == PRESET_HASHES


def test_sweep_name_from_an_unsafe_file_name_says_to_give_a_name(tmp_path):
    path = _study(tmp_path, TINY + "grid: {seed: [0, 1]}\n", name="my sweep.yaml")
    res = _cli("sweep", str(path), "--out", str(tmp_path / "out"), "-q")
    _one_line_error(res, "name: the sweep file's name 'my sweep'", "give the sweep a name")
    assert not (tmp_path / "out").exists()
    dotdot = _study(tmp_path, "name: '..'\n" + TINY + "grid: {seed: [0, 1]}\n", "s.yaml")
    line = _one_line_error(_cli("sweep", str(dotdot), "-q"), "name: '..' cannot name a file")
    assert "grid." not in line  # the base study is at fault, not a grid value


def test_sweep_grid_size_is_bounded(tmp_path):
    path = _study(tmp_path, TINY + "grid: {seed: " + json.dumps(list(range(101))) + ", "
                  "n_seeds: " + json.dumps(list(range(1, 101))) + "}\n", "big.yaml")
    _one_line_error(_cli("sweep", str(path), "--out", str(tmp_path / "out"), "-q"),
                    "grid: 10100 points (101 x 100); a sweep has at most 10000")
    assert not (tmp_path / "out").exists()


def test_plot_paths_stay_in_the_run_directory(tmp_path):
    """Defence in depth: results whose task label would leave plots/ (a results file from
    elsewhere) are refused before any plot is drawn."""
    from modelcollapse.report.plots import plot_run

    frame = pd.DataFrame({"task": ["../escape"], "iteration": [0], "paradigm": ["replace"],
                          "metric": ["x"], "value": [1.0]})
    with pytest.raises(ValueError, match="would write outside"):
        plot_run(frame, tmp_path / "run" / "plots")
    assert not (tmp_path / "escape.png").exists() and not (tmp_path / "run").exists()


# -- finding 3: user code is explicit ---------------------------------------------------------

VERIFY = TINY.replace("paradigms: [replace]", "paradigms: [{name: accumulate, curation: "
                      "[{policy: verify, verifier: '%s'}]}]")


@pytest.mark.parametrize("ref, message", [
    ("no_such_mod_xyz:fn", "cannot import 'no_such_mod_xyz' from the study's folder"),
    ("my_verifier_mod:nofn", "module 'my_verifier_mod' has no attribute 'nofn'; did you mean fn?"),
    ("my_verifier_mod:CONSTANT", "my_verifier_mod:CONSTANT is a int, not a function"),
    ("my_broken_verifier:fn", "importing 'my_broken_verifier' failed: ZeroDivisionError"),
    ("not an import path", "'not an import path' is not 'module:attribute'"),
])
@pytest.mark.parametrize("command", ["run", "validate", "sweep"])
def test_verifier_is_resolved_at_validation(tmp_path, monkeypatch, ref, message, command):
    (tmp_path / "my_verifier_mod.py").write_text("CONSTANT = 3\n\ndef fn(X):\n"
                                                 "    return X[:, 0] > -99\n")
    (tmp_path / "my_broken_verifier.py").write_text("1 / 0\n")
    text = VERIFY % ref + ("grid: {seed: [0, 1]}\n" if command == "sweep" else "")
    path = _study(tmp_path, text)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    args = [command, str(path)] + ([] if command == "validate" else
                                   ["--out", str(tmp_path / "out"), "-q"])
    line = _one_line_error(_cli(*args, cwd=elsewhere, monkeypatch=monkeypatch),
                           "paradigms.0.curation.0.verifier: ", message)
    assert "grid." not in line
    assert not (tmp_path / "out").exists() and list(elsewhere.iterdir()) == []
    for module in ("my_verifier_mod", "my_broken_verifier"):
        sys.modules.pop(module, None)


def test_verifier_next_to_the_study_is_listed_and_runs_from_anywhere(tmp_path, monkeypatch):
    (tmp_path / "my_beside_checks.py").write_text("def keep(X):\n    return X[:, 0] > -99\n")
    path = _study(tmp_path, VERIFY % "my_beside_checks:keep")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    try:
        res = _cli("validate", str(path), cwd=elsewhere, monkeypatch=monkeypatch)
        assert res.exit_code == 0, res.output
        assert ("runs your code: paradigms.0.curation.0.verifier = my_beside_checks:keep ("
                + str(tmp_path / "my_beside_checks.py") + ")") in " ".join(res.output.split())
        res = _cli("run", str(path), "--out", str(tmp_path / "out"), "-q", "--no-plots")
        assert res.exit_code == 0, res.output
        frame = pd.read_parquet(tmp_path / "out" / "results.parquet")
        kept = frame[(frame.metric == "verify_kept") & (frame.iteration == 1)].value
        assert (kept == 20).all()  # the user's function, which keeps every row
    finally:
        sys.modules.pop("my_beside_checks", None)


def test_verifier_is_found_by_a_fresh_process_through_the_study(tmp_path):
    """A worker in another process (Ray, spawn) imports the verifier from the study's folder,
    which travels with the (pickled) study, whatever its working directory."""
    (tmp_path / "my_far_checks.py").write_text("def keep(X):\n    return X[:, 0] > -99\n")
    try:
        study = load_study(str(_study(tmp_path, VERIFY % "my_far_checks:keep")))
    finally:
        sys.modules.pop("my_far_checks", None)
    (tmp_path / "study.pkl").write_bytes(pickle.dumps(study))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("import pickle, sys, types, numpy as np; s = pickle.load(open(sys.argv[1], 'rb')); "
            "v = s.paradigms[0].build().curation.policies[0]; X = np.ones((1, 3, 2)); "
            "v.prepare(types.SimpleNamespace(task=types.SimpleNamespace(test=X))); "
            "print(v._fn.__module__, v.passes(X).all())")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "study.pkl")],
                         cwd=elsewhere, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["my_far_checks", "True"], out.stderr[-2000:]


# -- finding 7: malformed study files ---------------------------------------------------------

def _bad_file(tmp_path: Path, kind: str) -> tuple[Path, str]:
    path = tmp_path / "study.yaml"
    if kind == "latin-1":
        path.write_bytes("name: caf\xe9\n".encode("latin-1") + TINY.encode())
        return path, "study.yaml: not UTF-8 text (byte 0xe9 at offset 9); save it as UTF-8"
    if kind == "binary":
        path.write_bytes(bytes(range(256)) * 4)
        return path, "study.yaml: not UTF-8 text (byte 0x80 at offset 128)"
    if kind == "deep":
        path.write_text(TINY + "description: " + "[" * 5000 + "]" * 5000 + "\n")
        return path, "study.yaml: lists and mappings nested more than 32 levels deep"
    if kind == "deep-aliases":  # deep without a deep parse: each alias one level more
        lines = ["a0: &a0 [1]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 60)]
        path.write_text(TINY + "scales:\n" + textwrap.indent("\n".join(lines), "  ") + "\n")
        return path, "nested more than 32 levels deep"
    if kind == "recursive":
        path.write_text(TINY + "description: &x [*x]\n")
        return path, "study.yaml: a list or mapping contains itself"
    if kind == "large":  # valid YAML, only too large: a comment
        path.write_text(TINY + "#" + "x" * MAX_STUDY_BYTES + "\n")
        return path, "study.yaml: 1 MiB; a study file is at most 1 MiB"
    if kind == "duplicate":
        path.write_text(TINY + "n_seeds: 3\n")
        return path, "study.yaml: not valid YAML (line 6): key 'n_seeds' given twice (first on line 5)"
    if kind == "duplicate-nested":
        path.write_text(TINY.replace("n_test: 50}", "n_test: 50, n_samples: 30}"))
        return path, "key 'n_samples' given twice"
    if kind == "nul":
        path.write_text(TINY + "description: a\x00b\n")
        return path, "study.yaml: not valid YAML: unacceptable character #x0000"
    raise AssertionError(kind)


BAD_FILES = ["latin-1", "binary", "deep", "deep-aliases", "recursive", "large", "duplicate",
             "duplicate-nested", "nul"]


@pytest.mark.parametrize("kind", BAD_FILES)
@pytest.mark.parametrize("command", ["validate", "run", "sweep"])
def test_malformed_study_files_are_one_line(tmp_path, kind, command):
    path, message = _bad_file(tmp_path, kind)
    args = [command, str(path)] + ([] if command == "validate" else
                                   ["--out", str(tmp_path / "out"), "-q"])
    _one_line_error(_cli(*args), message)
    assert not (tmp_path / "out").exists()


def test_large_file_is_refused_before_it_is_read(tmp_path, monkeypatch):
    path = tmp_path / "study.yaml"
    with path.open("wb") as handle:  # sparse: 50 MB that take no time to write
        handle.write(TINY.encode())
        handle.truncate(50_000_000)
    reads = []
    original = Path.open

    def counting_open(self, *args, **kwargs):
        if self == path:
            reads.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", counting_open)
    with pytest.raises(StudyError, match=r"^.*study\.yaml: 47\.7 MiB; a study file is at most "
                       r"1 MiB$"):
        load_study(str(path))
    assert reads == []


def test_a_file_that_grows_after_its_size_was_checked_is_read_only_to_the_limit(
        tmp_path, monkeypatch):
    path = tmp_path / "study.yaml"
    path.write_text(TINY + "#" + "x" * (2 * MAX_STUDY_BYTES) + "\n")
    small = path.stat()
    path_stat = Path.stat

    def stale_stat(self, *args, **kwargs):  # the size seen before the file grew
        result = path_stat(self, *args, **kwargs)
        if self == path:
            return type(result)((*result[:6], 100, *result[7:]))
        return result

    asked = []
    path_open = Path.open

    class Recorder:  # a file handle that records how much each read asks for
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def read(self, n=-1):
            asked.append(n)
            return self.handle.read(n)

    def recording_open(self, *args, **kwargs):
        handle = path_open(self, *args, **kwargs)
        return Recorder(handle) if self == path else handle

    monkeypatch.setattr(Path, "stat", stale_stat)
    monkeypatch.setattr(Path, "open", recording_open)
    assert path.stat().st_size == 100 and small.st_size > MAX_STUDY_BYTES
    with pytest.raises(StudyError, match=r"study\.yaml: more than 1 MiB; a study file is at "
                       r"most 1 MiB$"):
        load_study(str(path))
    assert asked and all(0 <= n <= MAX_STUDY_BYTES + 1 for n in asked), asked


def test_merge_keys_may_override_and_exponents_are_numbers(tmp_path):
    """A YAML merge key (<<) followed by an own value is not a repeated key; 1e2 and 2.5e-1
    are numbers (YAML 1.2), and a whole float fills an integer field."""
    path = _study(tmp_path, """\
        task: gaussian
        task_params: {<<: {n_samples: 20, n_features: 2}, n_samples: 1e2, variance: 2.5e-1}
        paradigms: [replace]
        """)
    params = load_study(str(path)).tasks[0].task_params
    assert params["n_samples"] == 100 and isinstance(params["n_samples"], int)
    assert params["variance"] == 0.25 and params["n_features"] == 2


@pytest.mark.parametrize("override, message", [
    ("n_seeds=true", "n_seeds: expected an integer, got true (a boolean)"),
    ("n_seeds='12'", "n_seeds: expected an integer, got '12' (text; write numbers without quotes)"),
    ("n_iterations=2.5", "n_iterations: Input should be a valid integer"),
    ("stop_when_collapsed=1", "stop_when_collapsed: expected true or false, got 1"),
    ("stop_when_collapsed='yes'", "stop_when_collapsed: expected true or false, got 'yes'"),
    ("task_params.n_samples='20'", "task_params.n_samples: expected an integer, got '20'"),
    ("task_params.variance=true", "task_params.variance: expected a number, got true"),
    ("task_params.variance=.nan", "task_params.variance: expected a finite number, got nan"),
    ("task_params.variance=.inf", "task_params.variance: expected a finite number, got inf"),
    ("task_params.variance=5e-324", "task_params.variance: expected a normal number, got 5e-324"),
    ("task_params.variance=1e400", "task_params.variance: expected a finite number, got inf"),
    ("task_params.sampling_scale=-.inf", "task_params.sampling_scale: expected a finite number"),
    ("profile.catastrophic_ratio=.inf", "profile.catastrophic_ratio: expected a finite number"),
    ("profile.min_seeds=false", "profile.min_seeds: expected an integer, got false"),
    ("synthetic_growth={kind: geometric, rate: .inf}", "synthetic_growth.rate: expected a finite"),
    ("paradigms=[{name: mix, real_fraction: .nan}]", "paradigms.0.real_fraction: expected a finite"),
    ("paradigms=[{name: mix, real_fraction: 0.5, real_weight: '0.5'}]",
     "paradigms.0.real_weight: expected a number, got '0.5'"),
    ("paradigms=[{name: accumulate, real_arrival: true}]",
     "paradigms.0.real_arrival: expected an integer, got true"),
    ("paradigms=[{name: accumulate, scraping: 1, curation: [{policy: detect}]}]",
     "paradigms.0.scraping: expected true or false, got 1"),
    ("paradigms=[{name: accumulate, curation: [{policy: ratio_cap, max_ratio: .inf}]}]",
     "paradigms.0.curation.0.max_ratio: expected a finite number, got inf"),
    ("paradigms=[{name: accumulate, curation: [{policy: detect, recall: '0.9'}]}]",
     "paradigms.0.curation.0.recall: expected a number, got '0.9'"),
])
def test_no_coercion_and_finite_numbers(tmp_path, override, message):
    path = _study(tmp_path, TINY)
    with pytest.raises(StudyError) as err:
        load_study(str(path), [override])
    assert str(err.value).startswith(message), str(err.value)


@pytest.mark.parametrize("task, params, message", [
    ("kde", "{bandwidth: .nan}", "task_params.bandwidth: expected a finite number, got nan"),
    ("kde", "{dataset: moons, data_scale: .inf}", "task_params.data_scale: expected a finite"),
    ("discrete", "{probabilities: [0.5, .nan]}", "task_params.probabilities.1: expected a finite"),
    ("discrete", "{probabilities: ['0.5', 0.5]}", "task_params.probabilities.0: expected a number"),
    ("linear_regression", "{noise_variance: .inf}", "task_params.noise_variance: expected a finite"),
    ("gmm", "{n_components: 2.0e+0, max_iter: true}", "task_params.max_iter: expected an integer"),
    ("gaussian", "{sample_metrics: 0}", "task_params.sample_metrics: expected true or false"),
])
def test_task_params_are_finite_and_not_coerced(tmp_path, task, params, message):
    path = _study(tmp_path, f"task: {task}\ntask_params: {params}\nparadigms: [replace]\n")
    with pytest.raises(StudyError) as err:
        load_study(str(path))
    assert str(err.value).startswith(message), str(err.value)


def test_task_params_models_refuse_non_finite_numbers_directly():
    from pydantic import ValidationError

    from modelcollapse.registry import tasks

    for name in ("gaussian", "kde", "linear_regression", "discrete"):
        params = tasks.get(name).Params
        field = {"gaussian": "variance", "kde": "bandwidth", "linear_regression":
                 "noise_variance", "discrete": "probabilities"}[name]
        value = [float("nan"), 1.0] if name == "discrete" else float("inf")
        with pytest.raises(ValidationError):
            params.model_validate({field: value})


def test_set_keeps_working(tmp_path):
    path = _study(tmp_path, TINY)
    study = load_study(str(path), ["n_seeds=20", "task_params.variance=1e-1",
                                   "task_params.n_samples=1e2", "seed=3"])
    assert (study.n_seeds, study.seed) == (20, 3)
    assert study.tasks[0].task_params["variance"] == 0.1
    assert study.tasks[0].task_params["n_samples"] == 100
    deep = "[" * 100 + "]" * 100
    with pytest.raises(StudyError, match="nested more than 32 levels deep"):
        load_study(str(path), [f"description={deep}"])


def test_api_dict_that_contains_itself_or_nests_deeply_is_one_line():
    data = {"task": "gaussian", "scales": {}}
    data["scales"]["loop"] = data
    with pytest.raises(StudyError, match="contains itself"):
        load_study(data)
    deep: dict = {}
    node = deep
    for _ in range(5000):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(StudyError, match="nested more than 32 levels deep"):
        load_study({"task": "gaussian", "description": deep})


PRESET_HASHES = {  # study_hash of every preset (and its scales) before issue 12
    "alemohammad2023-mad": "85b14a90542436b6",
    "default": "e54d93e378382444",
    "dey2024-million": "ca0492c4d941cdd0",
    "dey2024-universality": "616dd96ebe1a5985",
    "discrete-replace-vs-accumulate": "c5fbe1bf98dad378",
    "gerstgrasser2024-diffusion": "1f06870a435d0629",
    "gerstgrasser2024-diffusion@paper": "41aafa47a29bbb84",
    "gerstgrasser2024-linear-regression": "c2ae7b644375282d",
    "gerstgrasser2024-linear-regression-grid": "b766c1ce7e7956b1",
    "gerstgrasser2024-lm": "531ff05621be7472",  # issue 13: description (sizing)
    "gerstgrasser2024-lm@paper": "eaf37fcb28b5ea6f",
    "gerstgrasser2024-vae": "01cccb5ea3ba9c99",
    "gerstgrasser2024-vae@paper": "f6079c90520866ea",
    "he2025-golden-ratio": "c5fcdc5b08e32698",
    "kazdan2024-gaussian": "6a0e7d86d395ac1f",
    "kazdan2024-sft": "602416b5600c25e7",
    "kazdan2024-sft@paper": "ce7414541d38f883",
    "kazdan2024-kde": "be82b4a2599e462f",
    "practices": "8ded7f912ecba268",
    "practices-vae": "871b11e2c8dbcff5",
    "schaeffer2025-timescales": "6db774e1aeffe49e",
    "shumailov2024-gaussian": "a774b966fa24aee8",
    "shumailov2024-vocabulary": "e5dc9db8335c5889",
}
