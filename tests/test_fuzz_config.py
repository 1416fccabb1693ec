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
