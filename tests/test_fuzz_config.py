"""Property-based: randomly mutated study files give a valid study or one clean line + exit 2,
never a traceback (hypothesis)."""

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from modelcollapse.cli import app
from modelcollapse.config import load_study

BASE = load_study("default").resolved()
FIELDS = ["name", "task", "task_params", "tasks", "paradigms", "n_iterations", "n_seeds", "seed",
          "n_synthetic", "synthetic_growth", "stop_when_collapsed", "description", "bogus"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                    st.sampled_from(["replace", "accumulate", "mix", "gaussian", "wine",
                                     "synthetic", "geometric", "[/x]", "{a: 1}"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(
        ["task", "task_params", "name", "dataset", "n_samples", "real_fraction", "kind", "x"]),
        inner, max_size=3)), max_leaves=6)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.dictionaries(st.sampled_from(FIELDS), values, min_size=1, max_size=3),
       drop=st.lists(st.sampled_from(FIELDS), max_size=2))
def test_mutated_study_files_fail_cleanly(tmp_path_factory, changes, drop):
    data = {k: v for k, v in BASE.items() if k not in drop}
    data.update(changes)
    path = tmp_path_factory.mktemp("fuzz") / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    res = CliRunner().invoke(app, ["validate", str(path)])
    assert res.exit_code in (0, 2), (res.exit_code, res.output, data)
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    if res.exit_code == 2:
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), res.output
        assert "Traceback" not in res.output


# -- the same inputs through `run` (issue 12, finding 11): the fuzz above only reaches
# `validate`; a run also builds tasks, runs chains and writes files.  A study that fails to
# validate must leave --out unwritten; one that validates must run or fail in one line.

TINY = {"name": "fuzz", "task": "gaussian",
        "task_params": {"n_samples": 20, "n_features": 2, "n_test": 50},
        "paradigms": ["replace"], "n_iterations": 2, "n_seeds": 2}
TINY_TEXT = yaml.safe_dump(TINY, sort_keys=False).encode()
CHEAP_TASKS = {"gaussian", "kde", "gmm", "discrete", "linear_regression"}


def _validates(path):
    """True if the study file validates, False if it is refused (StudyError), None if it
    validates but is too large to run in a test (the fuzz runs only small studies)."""
    from modelcollapse.config import StudyError

    try:
        study = load_study(str(path))
    except StudyError:
        return False
    if study.n_seeds > 20 or study.n_iterations > 4 or len(study.paradigms) > 4:
        return None
    for entry in study.tasks:
        p = entry.task_params
        if (entry.task not in CHEAP_TASKS or (p.get("n_samples") or 0) > 500
                or (p.get("n_test") or 0) > 2000 or (p.get("n_features") or 0) > 20
                or (p.get("n_outcomes") or 0) > 1000 or p.get("dataset") in ("austen", "brown")):
            return None
    for growth in [study.synthetic_growth] + [s.synthetic_growth for s in study.paradigms]:
        if growth is not None and sum(growth.sizes(study.n_synthetic or 500,
                                                   study.n_iterations)) > 5000:
            return None
    return True


def _run_cleanly(path, out):
    valid = _validates(path)
    if valid is None:
        return
    res = CliRunner().invoke(app, ["run", str(path), "--out", str(out), "-q", "--no-plots"])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    assert res.exit_code in (0, 2), (res.exit_code, res.output)
    if res.exit_code == 2:
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    if valid is False:
        assert res.exit_code == 2, res.output
        assert not out.exists(), sorted(p.name for p in out.rglob("*"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.dictionaries(st.sampled_from(FIELDS), values, min_size=1, max_size=3),
       drop=st.lists(st.sampled_from(FIELDS), max_size=2))
def test_mutated_study_files_fail_cleanly_when_run(tmp_path_factory, changes, drop):
    data = {k: v for k, v in TINY.items() if k not in drop}
    data.update(changes)
    folder = tmp_path_factory.mktemp("run")
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    _run_cleanly(path, folder / "out")


#: byte edits: (position as a fraction of the file, bytes deleted, bytes inserted), with
#: non-UTF-8 bytes, NUL, YAML syntax and digits over-represented; or a line of the file copied
#: after another (repeated keys, misplaced indentation)
edit_bytes = st.one_of(st.binary(max_size=4), st.sampled_from(
    [b"\xe9", b"\xff\xfe", b"\x80", b"\x00", b"\xc3", b"[", b"{", b"&a ", b"*a", b": ", b"\n  ",
     b"'", b"-", b"9", b".nan", b"1e9", b"true", b"!!python/object:os.system", b"\t"]))
edits = st.lists(st.one_of(
    st.tuples(st.just("splice"), st.floats(0, 1), st.integers(0, 3), edit_bytes),
    st.tuples(st.just("copy-line"), st.floats(0, 1), st.floats(0, 1), st.just(b""))),
    min_size=1, max_size=4)


def _edit(text: bytes, changes) -> bytes:
    for op, a, b, inserted in changes:
        if op == "splice":
            at = int(a * len(text))
            text = text[:at] + inserted + text[at + b:]
        else:
            lines = text.split(b"\n")
            line = lines[min(int(a * len(lines)), len(lines) - 1)]
            lines.insert(min(int(b * len(lines)), len(lines)), line)
            text = b"\n".join(lines)
    return text


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=edits)
def test_byte_mutated_study_files_fail_cleanly_when_run(tmp_path_factory, changes):
    folder = tmp_path_factory.mktemp("bytes")
    path = folder / "study.yaml"
    path.write_bytes(_edit(TINY_TEXT, changes))
    _run_cleanly(path, folder / "out")


def test_the_run_fuzz_reaches_both_outcomes(tmp_path):
    """The guard of the fuzz: the tiny base study runs (exit 0), and a non-UTF-8 byte is
    refused in one line with nothing written."""
    good = tmp_path / "good.yaml"
    good.write_bytes(TINY_TEXT)
    assert _validates(good) is True
    res = CliRunner().invoke(app, ["run", str(good), "--out", str(tmp_path / "ok"), "-q",
                                   "--no-plots"])
    assert res.exit_code == 0 and (tmp_path / "ok" / "results.parquet").is_file(), res.output
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(TINY_TEXT.replace(b"fuzz", b"f\xe9zz"))
    assert _validates(bad) is False
    _run_cleanly(bad, tmp_path / "out")
