"""Issue 15, engine throughput: the batched computations that replace per-replicate numpy calls
give exactly numpy's numbers (the streams are unchanged), for every replicate and whatever
block of replicates it is computed in.  (No timings here: ``benchmarks/bench_scale.py
--engine`` measures the speed.)"""

from __future__ import annotations

import numpy as np
import pytest

from modelcollapse import rng
from modelcollapse.config import Study
from modelcollapse.engine.unit import compute_unit
from modelcollapse.rng import Role, Streams
from modelcollapse.tasks import base
from modelcollapse.tasks.base import smallest_rows


def _numpy_choices(streams, t, role, population, size, repeats):
    gens = streams(t, role)
    return np.stack([np.stack([g.choice(population, size, replace=False) for g in gens])
                     for _ in range(repeats)])


@pytest.mark.parametrize("population,size,repeats", [
    (10, 6, 8), (10, 9, 8), (10, 10, 3), (10, 1, 2), (2, 1, 5), (7, 0, 2), (1000, 30, 2),
    (5000, 64, 1)])
def test_choices_are_numpys_choice(population, size, repeats):
    streams = Streams(4, range(3, 1203))
    got = streams.choices(5, Role.REFERENCE, population, size, repeats)
    assert got.shape == (repeats, 1200, size) and got.dtype == np.int64
    assert np.array_equal(got, _numpy_choices(streams, 5, Role.REFERENCE, population, size,
                                              repeats))


@pytest.mark.parametrize("population,size,repeats", [(10, 8, 4), (64, 64, 1), (1000, 30, 2)])
def test_floyd_emulation_itself_is_exact(population, size, repeats):
    """The emulation, not its numpy fallback, gives numpy's rows (the fallback would hide a
    broken emulation from the test above); drawn values kept as bits (population <= 64) and
    compared one by one (larger)."""
    streams = Streams(9, range(2000))
    n32 = repeats * rng._floyd_uint32s(population, size)
    streams(2, Role.REFERENCE)
    raw = np.stack([bg.random_raw((n32 + 1) // 2) for bg in streams._bitgens[Role.REFERENCE]])
    u32 = np.empty((2000, raw.shape[1] * 2), dtype=np.uint64)
    u32[:, 0::2], u32[:, 1::2] = raw & rng._LOW32, raw >> rng._SHIFT32
    rows, unsure = rng._floyd_choices(u32, population, size, repeats)
    assert not unsure.any()
    assert np.array_equal(rows, _numpy_choices(streams, 2, Role.REFERENCE, population, size,
                                               repeats))


def test_choices_flag_possible_rejections():
    # Lemire's method rejects a word only where the low product word is below the range
    values, unsure = rng._bounded(np.array([0, 2**32 - 1, 2**31 + 1, 2**31], dtype=np.uint64), 5)
    # (2**31 + 1) 6 = 3 2**32 + 6: low word 6, not below 6; 2**31 6: low word 0
    assert unsure.tolist() == [True, False, False, True]
    assert values.tolist() == [0, 5, 3, 3]


def test_choices_do_not_depend_on_the_block():
    whole = Streams(1, range(0, 600)).choices(7, Role.REFERENCE, 10, 7, 3)
    part = Streams(1, range(250, 400)).choices(7, Role.REFERENCE, 10, 7, 3)
    assert np.array_equal(whole[:, 250:400], part)


@pytest.mark.parametrize("n_normal,df,n_chi", [(1, 9.0, 1), (6, 7.0, 3), (2, 2.5, 0),
                                               (0, 30.0, 4), (1, 2.0, 1), (1, 1.5, 1)])
def test_normals_chisquares_are_numpys(n_normal, df, n_chi):
    streams = Streams(1, range(100, 2100))
    z, chi = streams.normals_chisquares(5, Role.SAMPLE, n_normal, df, n_chi)
    gens = streams(5, Role.SAMPLE)
    z0 = np.stack([g.standard_normal(n_normal) for g in gens])
    chi0 = np.stack([g.chisquare(df, size=n_chi) for g in gens])
    assert np.array_equal(z, z0) and np.array_equal(chi, chi0)


def test_normal_emulation_itself_is_exact():
    """Most replicates are computed by the emulation (not its numpy fallback), and those are
    numpy's numbers; the ziggurat's one-word bound is exact (a magnitude at the bound is not
    on the fast path)."""
    assert rng._check_exact_normals()
    streams = Streams(3, range(4000))
    z, chi, sure = rng._emulated_normals_chisquares(streams._key_array(), 4, int(Role.SAMPLE),
                                                    1, 9.0, 1)
    assert sure.mean() > 0.9
    gens = streams(4, Role.SAMPLE)
    z0 = np.array([g.standard_normal() for g in gens])
    chi0 = np.array([g.chisquare(9.0) for g in gens])
    assert np.array_equal(z[sure, 0], z0[sure]) and np.array_equal(chi[sure, 0], chi0[sure])
    # the tables against numpy itself: numpy takes one word just below each strip's bound, more
    # at it; the value of a one-word draw is the emulation's
    zig = rng._ZIGGURAT
    bg = np.random.Philox(key=[5, 6])
    g = np.random.Generator(bg)
    state = bg.state

    def numpy_draw(word):
        state["buffer"] = np.array([word, 0, 0, 0], dtype=np.uint64)
        state["buffer_pos"] = 0
        bg.state = state
        x = g.standard_normal()
        return x, bg.state["buffer_pos"] == 1 and not bg.state["state"]["counter"].any()

    for strip in range(256):
        bound = int(zig.k[strip])
        words = [strip | (m << 9) for m in (bound - 1, bound) if 0 <= m < 2**52]
        for word in words:
            x, one_word = numpy_draw(word)
            value, fast = zig.normal(np.array([word], dtype=np.uint64))
            assert bool(fast[0]) == one_word, (strip, word)
            assert not one_word or value[0] == x


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**32 - 1, 2**32, 2**40 + 7, 2**130 + 5])
def test_replicate_keys_are_numpys_seed_sequence(seed):
    reps = np.array([0, 1, 2, 5, 1000, 2**31, 2**32 - 1, 2**32, 77777])
    want = np.stack([np.random.SeedSequence(seed, spawn_key=(int(r),)).generate_state(2, np.uint64)
                     for r in reps])
    assert np.array_equal(rng.replicate_keys(seed, reps), want)
    assert np.array_equal(rng._seed_keys(seed, reps[:-2]), want[:-2])  # the hash itself
    assert np.array_equal(Streams(seed, reps)._key_array(), want)
    with pytest.raises(ValueError):
        Streams(seed, [3, -1])


def test_philox_is_numpys():
    streams = Streams(3, range(5))
    words = rng.philox(streams._key_array(), [1, 0, 4, 2])
    for i, key in enumerate(streams._keys):
        assert np.array_equal(words[i], np.random.Philox(key=key, counter=[0, 0, 4, 2])
                              .random_raw(4))


def test_smallest_rows_is_a_stable_argsort():
    g = np.random.default_rng(0)
    for trial in range(400):
        R, m = int(g.integers(1, 12)), int(g.integers(1, 50))
        v = (g.integers(0, int(g.integers(1, 6)), size=(R, m)).astype(float) if trial % 2
             else g.normal(size=(R, m)))
        if trial % 7 == 0:
            v[0, 0] = -0.0
        if trial % 11 == 0:
            v[v == 0] = np.inf
        if trial % 13 == 0:
            v[0, -1] = np.nan
        k = int(g.integers(0, m + 2))
        assert np.array_equal(smallest_rows(v, k), np.argsort(v, axis=1, kind="stable")[:, :k])


@pytest.mark.parametrize("d", [1, 3])
def test_held_out_moments_and_tail_rows_in_chunks(monkeypatch, d):
    """Replicate chunks (bounded temporaries) give the numbers of the whole arrays at once."""
    g = np.random.default_rng(d)
    X = g.normal(size=(23, 41, d)) * np.exp(g.normal(size=(23, 1, d)))
    X[3, :5] = 0.0
    mean = X.mean(1)
    Xc = X - mean[:, None]
    cov = np.swapaxes(Xc, 1, 2) @ Xc / X.shape[1]
    maha = ((Xc @ np.linalg.pinv(cov)) * Xc).sum(-1)
    tail = np.argsort(-maha, axis=1, kind="stable")[:, :4]
    for chunk in (1, 5 * 41 * d * 8, 2**40):  # one replicate, five, all of them
        monkeypatch.setattr(base, "CHUNK_BYTES", chunk)
        got_mean, got_cov = base.reference_moments(X)
        assert np.array_equal(got_mean, mean) and np.array_equal(got_cov, cov)
        assert np.array_equal(base.tail_rows(X, mean, cov), tail)


@pytest.mark.parametrize("d,n", [(1, 10), (3, 12)])
def test_gaussian_batch_gives_the_generators_numbers(d, n):
    """Gaussian.sample_statistics through a Batch (the engine's call) equals the same call with
    the list of per-replicate generators (the numbers before issue 15)."""
    from modelcollapse.families.gaussian import Gaussian

    R = 600
    g = np.random.default_rng(d)
    X = g.normal(size=(R, n, d))
    model = Gaussian().fit(X)
    streams = Streams(2, range(R))
    via_batch = model.sample_statistics(n, rngs=streams.batch(3, Role.SAMPLE))
    via_gens = model.sample_statistics(n, rngs=streams(3, Role.SAMPLE))
    for k in via_gens:
        assert np.array_equal(via_batch[k], via_gens[k]), k
    assert np.array_equal(model.sample(4, rngs=streams.batch(3, Role.SAMPLE)),
                          model.sample(4, rngs=streams(3, Role.SAMPLE)))


def test_learning_curve_batched_equals_per_replicate():
    """A family whose fit draws nothing gets its subsamples from ``Streams.choices``; the curve
    equals the per-replicate path (``g.choice`` between fits) of the same family."""
    from modelcollapse.families.gaussian import Gaussian
    from modelcollapse.tasks.base import LearningCurve

    class DrawingGaussian(Gaussian):
        fit_uses_rngs = True

    R, n = 300, 10
    real = np.random.default_rng(0).normal(size=(R, n, 1))
    curve = LearningCurve("mean_sq_error", lambda m: (m.mean_ ** 2).sum(1), (4, 6, 9), 5)
    streams = Streams(0, range(R))
    batched = curve.compute(Gaussian, real, streams)
    per_replicate = curve.compute(DrawingGaussian, real, streams)
    assert list(batched) == list(per_replicate)
    for k in batched:
        assert np.array_equal(batched[k], per_replicate[k]), k


def _target(n_seeds, n_iterations=12, **params):
    return Study.model_validate({
        "task": "gaussian", "task_params": {"dataset": "synthetic", "n_features": 1,
                                            "n_samples": 10, **params},
        "paradigms": ["accumulate"], "n_iterations": n_iterations, "n_seeds": n_seeds})


def test_target_study_matches_the_reference_path(monkeypatch):
    """The issue's study (above the emulation's replicate threshold): the whole unit equals the
    unit computed with numpy replicate by replicate."""
    study = _target(400)
    fast = compute_unit(study, 0, 0)
    assert any(k.startswith("reference_") for k in fast.values)  # the learning curve is there
    monkeypatch.setattr(rng, "FLOYD_EXACT", False)
    monkeypatch.setattr(rng, "EXACT_NORMALS", False)
    monkeypatch.setattr(rng, "SEED_KEYS_EXACT", False)
    monkeypatch.setattr(base, "CHUNK_BYTES", 2**62)
    monkeypatch.setattr(base, "smallest_rows",
                        lambda v, k: np.argsort(v, axis=1, kind="stable")[:, :k])
    slow = compute_unit(study, 0, 0)
    assert list(fast.values) == list(slow.values)
    for k in fast.values:
        assert np.array_equal(fast.values[k], slow.values[k], equal_nan=True), k
    assert np.array_equal(fast.status, slow.status)


def test_target_chains_do_not_depend_on_their_block():
    """Block invariance: replicates 300..599 computed alone equal their slice of 0..899."""
    from modelcollapse.engine.loop import run_chain

    study = _target(900)
    spec = study.paradigms[0]

    def run(reps):
        streams = Streams(study.seed, reps)
        task = study.tasks[0].build(streams)
        return run_chain(task, spec.build(), n_iterations=study.n_iterations,
                         n_synthetic=10, streams=streams).values

    whole, part = run(range(900)), run(range(300, 600))
    for k in whole:
        assert np.array_equal(whole[k][:, 300:600], part[k], equal_nan=True), k


def test_a_nan_in_any_metric_marks_the_replicate():
    """run_chain's per-iteration NaN check (one OR per metric): a NaN in one metric of one
    replicate gives that replicate status ``nan_metric``, and only where the fit was ok."""
    from modelcollapse.engine.loop import run_chain

    study = _target(4, n_iterations=3)
    streams = Streams(study.seed, range(4))
    task = study.tasks[0].build(streams)
    evaluate = task.evaluate

    def with_nan(model, t=0):
        out = dict(evaluate(model, t))
        name = sorted(out)[t % len(out)]  # another metric at each iteration
        out[name] = np.array(out[name], dtype=float)
        out[name][t] = np.nan
        return out

    task.evaluate = with_nan
    result = run_chain(task, study.paradigms[0].build(), n_iterations=3, n_synthetic=10,
                       streams=streams)
    for t in range(3):
        assert result.status[t].tolist() == ["nan_metric" if r == t else "ok" for r in range(4)]
