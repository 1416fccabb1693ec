"""The discrete task on a real corpus' word distribution (fixture corpus written by the test)."""

import json

import numpy as np
import pytest

from modelcollapse.config import Study
from modelcollapse.data.text import word_counts
from modelcollapse.engine import run_study
from modelcollapse.registry import tasks
from modelcollapse.rng import Streams

TEXT = {"emma.txt": "Emma Woodhouse, handsome, clever, and rich; Emma's home was happy.\n",
        "persuasion.txt": "Sir Walter Elliot, of Kellynch Hall -- the Elliot home; "
                          "and Emma\u2019s friend was rich.\n",
        "mansfieldpark.txt": "woodhouse handsome clever happy sir walter of kellynch the the "
                             "the\n"}


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELCOLLAPSE_DATA", str(tmp_path))
    root = tmp_path / "austen"
    root.mkdir()
    for name, text in TEXT.items():
        (root / name).write_text(text, encoding="utf-8")
    (root / "meta.json").write_text(json.dumps({"name": "austen"}))
    return root


def test_word_counts(corpus):
    words, counts = word_counts("austen")
    # case folded, the typographic apostrophe is an apostrophe, punctuation and '--' dropped
    expected = {"the": 4, "emma's": 2, "and": 2, "rich": 2, "elliot": 2, "emma": 1, "hall": 1}
    got = dict(zip(words, counts))
    assert all(got[w] == c for w, c in expected.items())
    assert counts.sum() == 35 and len(words) == 18
    assert words[0] == "the" and words[-3:] == ["emma", "friend", "hall"]  # ties alphabetical


def test_unprepared_corpus_is_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELCOLLAPSE_DATA", str(tmp_path))
    spec = tasks.get("discrete")
    with pytest.raises(ValueError, match="modelcollapse data prepare austen"):
        spec.build(spec.Params(dataset="austen"), Streams(0, range(2)))
    with pytest.raises(ValueError, match="not allowed with dataset=austen"):
        spec.Params(dataset="austen", n_outcomes=3)


def test_real_draws_follow_the_corpus(corpus):
    spec = tasks.get("discrete")
    p = spec.Params(dataset="austen", n_samples=20_000)
    task = spec.build(p, Streams(3, range(4)))
    _, counts = word_counts("austen")
    p0 = counts / counts.sum()
    assert task.name == "discrete-austen" and np.allclose(task.truth["probabilities"], p0)
    freq = np.stack([np.bincount(r, minlength=len(p0)) for r in task.real]) / 20_000
    se = np.sqrt(p0 * (1 - p0) / 20_000)
    assert (np.abs(freq - p0) < 5 * se).all()


def test_replace_loses_word_types_accumulate_keeps_them(corpus):
    study = Study.model_validate({
        "name": "t", "task": "discrete", "n_iterations": 6, "n_seeds": 8,
        "task_params": {"dataset": "austen", "n_samples": 30},
        "paradigms": ["replace", "accumulate"]})
    df = run_study(study)
    support = df[df.metric == "support_size"].pivot_table(
        index=["paradigm", "seed"], columns="iteration", values="value", observed=True)
    rep, acc = support.loc["replace"].to_numpy(), support.loc["accumulate"].to_numpy()
    # Wright-Fisher never gains a type; an accumulating pool keeps every real one
    assert (np.diff(rep, axis=1) <= 0).all() and (rep[:, -1] < rep[:, 0]).any()
    assert (acc == acc[:, :1]).all()
    tail = df[(df.metric == "tail_support_recall")]
    assert set(tail.paradigm) == {"replace", "accumulate"}
    assert ((tail.value >= 0) & (tail.value <= 1)).all()
    # the tail is the three words seen once: the share of them produced never grows under replace
    rec = tail[tail.paradigm == "replace"].pivot(index="seed", columns="iteration", values="value")
    assert (np.diff(rec.to_numpy(), axis=1) <= 0).all()
    assert np.allclose(rec.to_numpy() * 3, np.round(rec.to_numpy() * 3))
