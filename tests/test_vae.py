"""The PyTorch VAE family and task (skipped when torch is not installed)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the vae family needs PyTorch (pip install torch)")

from modelcollapse.config import Study  # noqa: E402
from modelcollapse.engine import run_study  # noqa: E402
from modelcollapse.families.vae import VAE  # noqa: E402
from modelcollapse.registry import tasks  # noqa: E402


@pytest.fixture
def vae_registered():
    """Register the task for one test only (other tests enumerate the registry)."""
    added = "vae" not in tasks
    if added:
        tasks.register("vae", "modelcollapse.tasks.vae:VAETask")
    yield
    if added:
        tasks._entries.pop("vae", None)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X = (load_digits().data / 16.0).astype(np.float32)
    return X[:100], X[100:160]


def _params(model):
    return [p.detach().cpu().numpy().copy() for p in model.net_.parameters()]


def test_parameter_count(digits):
    D, H, L = 64, 32, 4
    expected = (D * H + H) + (H * 2 * L + 2 * L) + (L * H + H) + (H * D + D)  # enc, dec layers
    model = VAE(hidden=H, latent=L, epochs=1).fit(digits[0], rng=np.random.default_rng(0))
    assert model.n_parameters() == expected == VAE.count_parameters(D, H, L) == 4616


def test_same_rng_same_fit_and_samples(digits):
    train, test = digits
    a = VAE(hidden=32, latent=4, epochs=2).fit(train, rng=np.random.default_rng(7))
    b = VAE(hidden=32, latent=4, epochs=2).fit(train, rng=np.random.default_rng(7))
    assert all(np.array_equal(x, y) for x, y in zip(_params(a), _params(b)))
    sa, sb = a.sample(20, rng=np.random.default_rng(1)), b.sample(20, rng=np.random.default_rng(1))
    assert sa.shape == (20, 64) and sa.dtype == np.float32 and np.array_equal(sa, sb)
    assert ((sa >= 0) & (sa <= 1)).all()
    assert not np.array_equal(sa, a.sample(20, rng=np.random.default_rng(2)))
    assert np.array_equal(a.score_samples(test), b.score_samples(test))
    assert a.score_samples(test).shape == (60,) and np.isfinite(a.score_samples(test)).all()
    # a row's score does not depend on the batch it is scored in
    np.testing.assert_allclose(a.score_samples(test[7:12]), a.score_samples(test)[7:12],
                               rtol=1e-12, atol=1e-12)
    c = VAE(hidden=32, latent=4, epochs=2).fit(train, rng=np.random.default_rng(8))
    assert not np.array_equal(_params(a)[0], _params(c)[0])
    assert set(np.unique(sa)) <= {0.0, 1.0}  # default: Bernoulli draws from the likelihood


def test_bernoulli_draws_are_samples_of_the_decoder_means(digits):
    """The default sampler draws x ~ Bernoulli(sigmoid(decoder(z))): binary pixels whose mean
    is the model's pixel mean, and whose variance adds E[p (1 - p)] to the means' variance (law of
    total variance) -- the noise that the decoder-mean option drops."""
    train, _ = digits
    bern = VAE(hidden=32, latent=4, epochs=3).fit(train, rng=np.random.default_rng(5))
    mean = VAE(hidden=32, latent=4, epochs=3, sample_output="mean").fit(
        train, rng=np.random.default_rng(5))
    assert all(np.array_equal(x, y) for x, y in zip(_params(bern), _params(mean)))
    xb = bern.sample(20000, rng=np.random.default_rng(11))
    xm = mean.sample(20000, rng=np.random.default_rng(12))
    assert set(np.unique(xb)) == {0.0, 1.0}
    assert ((xm > 0) & (xm < 1)).all()
    # both estimate E_z[sigmoid(decoder(z))] per pixel (sd <= 0.5 / sqrt(20000) = 0.0035)
    np.testing.assert_allclose(xb.mean(0), xm.mean(0), atol=0.02)
    expected_extra = (xm * (1 - xm)).mean(0).sum()           # E[p (1 - p)], summed over pixels
    np.testing.assert_allclose(xb.var(0).sum() - xm.var(0).sum(), expected_extra, rtol=0.05)
    with pytest.raises(ValueError, match="sample_output"):
        VAE(sample_output="binary")


@pytest.mark.parametrize("n", [100, 37])
def test_train_budget_epochs_or_steps(digits, n):
    """``train_steps=None``: epochs x ceil(n / batch) steps; ``train_steps=k``: k steps whatever
    n; and k = epochs x ceil(n / batch) reproduces the epochs budget bit for bit."""
    train = digits[0][:n]
    by_epochs = VAE(hidden=16, latent=2, epochs=3, batch_size=16).fit(
        train, rng=np.random.default_rng(2))
    planned = 3 * -(-n // 16)
    assert by_epochs.train_steps_ == by_epochs.planned_steps(n) == planned
    assert len(by_epochs.loss_history_) == 3
    same = VAE(hidden=16, latent=2, epochs=99, train_steps=planned, batch_size=16).fit(
        train, rng=np.random.default_rng(2))
    assert all(np.array_equal(x, y) for x, y in zip(_params(by_epochs), _params(same)))
    assert same.loss_history_ == by_epochs.loss_history_
    short = VAE(hidden=16, latent=2, train_steps=5, batch_size=16).fit(
        train, rng=np.random.default_rng(2))
    assert short.train_steps_ == 5 and len(short.loss_history_) == -(-5 // -(-n // 16))
    with pytest.raises(ValueError, match="train_steps"):
        VAE(train_steps=0)


def test_warm_start_differs_from_fresh(digits):
    train, _ = digits
    fresh, warm = VAE(hidden=32, latent=4, epochs=2), VAE(hidden=32, latent=4, epochs=2,
                                                          init="warm_start")
    fresh.fit(train, rng=np.random.default_rng(3))  # first fits: identical
    warm.fit(train, rng=np.random.default_rng(3))
    assert all(np.array_equal(x, y) for x, y in zip(_params(fresh), _params(warm)))
    fresh.fit(train, rng=np.random.default_rng(4))
    warm.fit(train, rng=np.random.default_rng(4))
    assert not np.array_equal(_params(fresh)[0], _params(warm)[0])
    assert warm.loss_history_[-1] < fresh.loss_history_[-1]  # 4 epochs of training vs 2


def test_sample_weight_changes_fit(digits):
    train, _ = digits
    w = np.where(np.arange(len(train)) < 50, 2.0, 0.5)
    a = VAE(hidden=32, latent=4, epochs=1).fit(train, rng=np.random.default_rng(0))
    b = VAE(hidden=32, latent=4, epochs=1).fit(train, sample_weight=w, rng=np.random.default_rng(0))
    c = VAE(hidden=32, latent=4, epochs=1).fit(train, sample_weight=np.full(len(train), 3.0),
                                               rng=np.random.default_rng(0))
    assert not np.array_equal(_params(a)[0], _params(b)[0])
    assert all(np.allclose(x, y, atol=1e-6) for x, y in zip(_params(a), _params(c)))


def test_non_finite_loss_is_a_status(digits):
    train, _ = digits
    bad = train.copy()
    bad[0, 0] = np.nan
    model = VAE(hidden=8, latent=2, epochs=3).fit(bad, rng=np.random.default_rng(0))
    assert model.status_ == "non_finite" and len(model.loss_history_) == 1
    assert model.train_steps_ == 2  # one epoch of ceil(100 / 64) steps, then it stopped


@pytest.mark.parametrize("init", ["fresh", "warm_start"])
def test_vae_study_through_engine(init, vae_registered):
    study = Study.model_validate({
        "name": "vae-smoke", "task": "vae", "n_iterations": 2, "n_seeds": 3, "seed": 0,
        "paradigms": ["replace", "accumulate"],
        "task_params": {"dataset": "digits", "n_samples": 100, "n_test": 100, "hidden": 32,
                        "latent": 4, "epochs": 2, "init": init},
    })
    df = run_study(study)
    assert set(df.paradigm) == {"replace", "accumulate"}
    assert df.iteration.max() == 1 and df.seed.nunique() == 3
    expected = {"test_nll", "tail_nll", "precision", "recall", "mode_coverage",
                "pixel_variance_ratio", "class_coverage", "train_steps"}
    assert expected <= set(df.metric)
    per_metric = df.groupby("metric").size()
    assert (per_metric[list(expected)] == 2 * 2 * 3).all()  # paradigms x iterations x seeds
    nll = df[df.metric == "test_nll"].value
    assert np.isfinite(nll).all() and (nll > 0).all()
    assert set(df.status) == {"ok"}
    assert np.isfinite(df[df.metric == "tail_nll"].value).all()
    cover = df[df.metric == "class_coverage"].value
    assert ((cover >= 0) & (cover <= 1)).all()
    assert set(df.task) == {"vae-digits"}
    assert (df[df.metric == "train_steps"].value == 2 * 2).all()  # steps budget: 2 x ceil(100/64)
    specs = df.attrs["profile_specs"]
    spec = next(iter(specs.values()))
    assert spec["risk"] == "test_nll" and spec["variance"] == "pixel_variance_ratio"
    assert spec["modes"] == "class_coverage"


@pytest.mark.parametrize("budget", ["steps", "epochs"])
def test_budget_and_matched_real_control_through_engine(budget, vae_registered):
    """Under ``steps`` every fit of every paradigm takes the same Adam steps; under ``epochs``
    accumulate's grow with its pool and ``real-matched`` (real data only) gets exactly
    accumulate's steps."""
    study = Study.model_validate({
        "name": "vae-budget", "task": "vae", "n_iterations": 3, "n_seeds": 2, "seed": 1,
        "paradigms": ["replace", "accumulate", "real-matched"],
        "task_params": {"dataset": "digits", "n_samples": 100, "n_test": 100, "hidden": 16,
                        "latent": 2, "epochs": 2, "sample_metrics": False,
                        "train_budget": budget},
    })
    df = run_study(study)
    wide = df[df.seed == df.seed.min()].pivot_table(index=["paradigm", "iteration"],
                                                    columns="metric", values="value")
    steps = wide["train_steps"].unstack("iteration")                    # paradigm x iteration
    if budget == "steps":
        assert (steps.to_numpy() == 4).all()                            # 2 x ceil(100 / 64)
    else:
        accumulate = [2 * -(-100 * (t + 1) // 64) for t in range(3)]    # 4, 8, 10
        assert steps.loc["accumulate"].tolist() == accumulate
        assert steps.loc["real-matched"].tolist() == accumulate
        assert steps.loc["replace"].tolist() == [4, 4, 4]
    n_synthetic = wide["n_synthetic"].unstack("iteration")
    assert (n_synthetic.loc["real-matched"] == 0).all()
    assert (wide["n_train"].unstack("iteration").loc["real-matched"]
            == wide["n_train"].unstack("iteration").loc["accumulate"]).all()
    with pytest.raises(Exception, match="train_steps applies only"):
        Study.model_validate({"name": "x", "task": "vae", "task_params": {
            "train_budget": "epochs", "train_steps": 10}})


def test_decoder_mean_option_is_labelled():
    from modelcollapse.rng import Streams
    from modelcollapse.tasks.vae import VAETask

    params = dict(dataset="digits", n_samples=50, n_test=20, sample_metrics=False)
    assert VAETask.build(VAETask.Params(**params), Streams(0, range(1))).name == "vae-digits"
    mean = VAETask.build(VAETask.Params(**params, sample_output="mean"), Streams(0, range(1)))
    assert mean.name == "vae-digits-mean"


def test_fashion_mnist_unprepared_is_a_clear_error(tmp_path, monkeypatch):
    from modelcollapse.rng import Streams
    from modelcollapse.tasks.vae import VAETask

    monkeypatch.setenv("MODELCOLLAPSE_DATA", str(tmp_path))
    params = VAETask.Params(dataset="fashion-mnist")
    with pytest.raises(ValueError, match="modelcollapse data prepare fashion-mnist"):
        VAETask.build(params, Streams(0, range(1)))


class _FixedImages:
    """A stand-in fitted model whose samples are given images (a perfect or a collapsed VAE)."""

    def __init__(self, images):
        self.images = images                                  # (R, s, D)

    def sample(self, n_samples, *, rngs):
        return self.images[:, :n_samples]

    def score_samples(self, X):
        return np.zeros(X.shape[:2])


def test_bernoulli_samples_are_compared_with_binarised_real_images():
    """With Bernoulli samples the sample metrics' reference is the test images binarised by
    one Bernoulli draw per pixel: binarised real training images (what a perfect model's
    Bernoulli samples look like) have a pixel variance ratio near 1 and high k-NN precision and
    recall, and cover every class; grey images do not pass for them."""
    from modelcollapse.rng import Streams
    from modelcollapse.tasks.vae import VAETask

    task = VAETask.build(VAETask.Params(dataset="digits", n_samples=900, n_test=300),
                         Streams(0, range(2)))
    g = np.random.default_rng(0)
    perfect = (g.random(task.real[:, :300].shape) < task.real[:, :300]).astype(np.float32)
    real = task.evaluate(_FixedImages(perfect))
    assert (np.abs(real["pixel_variance_ratio"] - 1) < 0.1).all()
    assert (real["recall"] > 0.6).all() and (real["precision"] > 0.6).all()
    assert (real["class_coverage"] == 1).all()
    assert real["train_steps"].shape == (2,) and np.isnan(real["train_steps"]).all()  # no fit
    grey = task.evaluate(_FixedImages(np.ascontiguousarray(task.real[:, :300])))
    assert (grey["pixel_variance_ratio"] < 0.7).all()  # grey levels lack the pixel noise


def test_feature_space_metrics_separate_real_from_collapsed():
    """Held-out-like real images are recalled in the classifier's feature space; one repeated
    mean image is not, and covers one class at most (decoder-mean samples: grey reference)."""
    from modelcollapse.rng import Streams
    from modelcollapse.tasks.vae import VAETask

    task = VAETask.build(VAETask.Params(dataset="digits", n_samples=900, n_test=300,
                                        sample_output="mean"), Streams(0, range(2)))
    real = task.evaluate(_FixedImages(task.real[:, :300]))
    mean = np.broadcast_to(task.real.mean(1, keepdims=True), (2, 300, 64))
    collapsed = task.evaluate(_FixedImages(np.ascontiguousarray(mean)))
    assert (real["recall"] > 0.6).all() and (real["precision"] > 0.8).all()
    assert (real["class_coverage"] == 1).all() and (real["mode_coverage"] >= 0.9).all()
    assert (collapsed["recall"] < 0.05).all() and (collapsed["class_coverage"] <= 0.1).all()
    assert (collapsed["pixel_variance_ratio"] < 1e-9).all()
