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
    binary = VAE(hidden=32, latent=4, epochs=1, sample_output="bernoulli").fit(
        train, rng=np.random.default_rng(0)).sample(10, rng=np.random.default_rng(0))
    assert set(np.unique(binary)) <= {0.0, 1.0}


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
                "pixel_variance_ratio", "class_coverage"}
    assert expected <= set(df.metric)
    per_metric = df.groupby("metric").size()
    assert (per_metric[list(expected)] == 2 * 2 * 3).all()  # paradigms x iterations x seeds
    nll = df[df.metric == "test_nll"].value
    assert np.isfinite(nll).all() and (nll > 0).all()
    assert set(df.status) == {"ok"}
    assert np.isfinite(df[df.metric == "tail_nll"].value).all()
    cover = df[df.metric == "class_coverage"].value
    assert ((cover >= 0) & (cover <= 1)).all()
    specs = df.attrs["profile_specs"]
    spec = next(iter(specs.values()))
    assert spec["risk"] == "test_nll" and spec["variance"] == "pixel_variance_ratio"
    assert spec["modes"] == "class_coverage"


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


def test_feature_space_metrics_separate_real_from_collapsed():
    """Held-out-like real images are recalled in the classifier's feature space; one repeated
    mean image is not, and covers one class at most."""
    from modelcollapse.rng import Streams
    from modelcollapse.tasks.vae import VAETask

    task = VAETask.build(VAETask.Params(dataset="digits", n_samples=900, n_test=300),
                         Streams(0, range(2)))
    real = task.evaluate(_FixedImages(task.real[:, :300]))
    mean = np.broadcast_to(task.real.mean(1, keepdims=True), (2, 300, 64))
    collapsed = task.evaluate(_FixedImages(np.ascontiguousarray(mean)))
    assert (real["recall"] > 0.6).all() and (real["precision"] > 0.8).all()
    assert (real["class_coverage"] == 1).all() and (real["mode_coverage"] >= 0.9).all()
    assert (collapsed["recall"] < 0.05).all() and (collapsed["class_coverage"] <= 0.1).all()
    assert (collapsed["pixel_variance_ratio"] < 1e-9).all()
