"""VAE task: a PyTorch variational autoencoder (``families.vae.VAE``) on flattened images in
[0, 1], one network per replicate.

Data (per replicate, from the replicate's DATA stream of iteration 0)
--------------------------------------------------------------------
* ``digits``: scikit-learn's 1,797 8x8 digits, pixels / 16 (D = 64).  A random permutation gives
  ``n_test`` held-out test images and the next ``n_samples`` training images.
* ``fashion-mnist``: the prepared arrays (``modelcollapse data prepare fashion-mnist``), pixels /
  255 (D = 784); ``n_samples`` random images of the official training split and ``n_test`` of the
  official test split.

Metrics (each iteration)
------------------------
* ``test_nll``: negative ELBO of the held-out real images, nats per image (an upper bound on the
  Bernoulli NLL; the risk metric).
* ``tail_nll``: the same on the 10% test images farthest from the test set's mean in Mahalanobis
  distance (``tasks.base.tail_rows`` on pixel space with the test set's mean and pseudo-inverse
  covariance): the rare-looking images (Def. 7).
* A classifier trained on real data: per replicate, a one-hidden-layer MLP (scikit-learn
  ``MLPClassifier``, ``FEATURES`` ReLU units) fitted to the replicate's real training images and
  their class labels.  Its hidden layer is the **feature space** of the k-NN metrics (the role
  the Inception network plays in FID and in Kynkäänniemi et al. 2019; pixel distances between
  blurry and sharp images say little) and its predictions give the class coverage.
* ``precision`` / ``recall`` / ``mode_coverage``: k-NN metrics (``metrics.knn``, k = 5) of 300
  samples against 300 test images in that feature space, modes = image classes (Defs. 6-8);
  ``tail_recall``: the recall of the 10% of those test images that are tail images in pixel
  space (as for ``tail_nll``).
* ``pixel_variance_ratio``: total pixel variance of the samples / that of the test images
  (diversity; the profile's variance metric, Def. 4).
* The test images these sample metrics compare with are rendered as the sampler renders images:
  with Bernoulli samples (default), each test image binarised by one Bernoulli draw per pixel
  (x ~ Bernoulli(grey level), drawn once per replicate from its DATA stream), so that binary
  samples are compared with binary real images (against grey images, binary samples of a
  perfect model would show a pixel variance ratio near 2 and a low k-NN precision); with
  decoder means, the grey test images.
* ``class_coverage``: the share of classes receiving at least 10% of their expected share (their
  share of the training pool) of the samples, as labelled by the classifier (the profile's modes
  metric, Def. 6).  Samples with non-finite pixels count as no class.

* ``train_steps``: the Adam steps of the iteration's fit (``tasks._budget``).

All sample metrics use one draw of 300 samples from the EVAL stream of the iteration.

Samples and budget
------------------
Synthetic images (and the evaluation samples) are Bernoulli draws from the decoder, the model's
own likelihood (``sample_output: bernoulli``, default).  ``sample_output: mean`` feeds the decoder
means back instead -- not samples of the model, and a variance-reducing step of its own -- and the
task is then named ``vae-<dataset>-mean`` so results say so.  ``train_budget: steps`` (default):
every fit takes ``train_steps`` Adam steps (default ``epochs`` x ceil(``n_samples`` /
``batch_size``), 800 on digits); ``epochs``: ``epochs`` passes over each training set.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from ..families.base import PerReplicate
from ..metrics import mean_nll
from ..metrics.image import class_coverage, classifier_features, pixel_variance_ratio
from ..metrics.knn import knn_precision_recall
from ..rng import Role, Streams
from ._budget import TrainBudget, train_steps_taken
from ._vector import N_EVAL, VECTOR_PROFILE
from .base import Task, TaskParams, reference_moments, tail_rows, take_rows

__all__ = ["VAETask", "VAE_PROFILE"]

#: collapse-profile roles of the VAE task's metrics
VAE_PROFILE = {**VECTOR_PROFILE, "variance": "pixel_variance_ratio", "modes": "class_coverage"}

FEATURES = 64    #: hidden units of the real-data classifier whose activations are the features

_DEFAULTS = {"digits": (500, 300), "fashion-mnist": (2000, 1000)}  # n_samples, n_test


def load_images(dataset: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train": (X, y), "test": (X, y)} with X of shape (n, D) float32 in [0, 1]; for
    ``digits`` both entries are the whole dataset (the task splits it)."""
    if dataset == "digits":
        from sklearn.datasets import load_digits

        bunch = load_digits()
        X, y = (bunch.data / 16.0).astype(np.float32), bunch.target.astype(np.int64)
        return {"train": (X, y), "test": (X, y)}
    from ..data.prepare import dataset_path

    root = dataset_path("fashion-mnist")
    out = {}
    for split in ("train", "test"):
        images, labels = root / f"{split}_images.npy", root / f"{split}_labels.npy"
        if not (images.is_file() and labels.is_file()):
            raise ValueError(f"dataset: fashion-mnist is not prepared ({images} missing); run "
                             "`modelcollapse data prepare fashion-mnist`")
        X = np.load(images)
        out[split] = ((X.reshape(len(X), -1) / 255.0).astype(np.float32),
                      np.load(labels).astype(np.int64))
    return out


class VAETask:
    family = "vae"

    class Params(TaskParams, TrainBudget):
        dataset: Literal["digits", "fashion-mnist"] = Field(
            "digits", description="'digits' (scikit-learn 8x8, pixels/16) or 'fashion-mnist' "
            "(28x28, pixels/255; needs `modelcollapse data prepare fashion-mnist`)")
        n_samples: int | None = Field(
            None, ge=2, description="real training images (default: digits 500, fashion-mnist 2000)")
        n_test: int | None = Field(
            None, ge=10, description="held-out real test images (default: digits 300, "
            "fashion-mnist 1000)")
        hidden: int = Field(128, ge=1, description="hidden units of encoder and decoder")
        latent: int = Field(8, ge=1, description="latent dimension")
        epochs: int = Field(100, ge=1, description="training epochs per fit under "
                            "train_budget 'epochs' (under 'steps': sets the default train_steps)")
        batch_size: int = Field(64, ge=1, description="minibatch size")
        lr: float = Field(3e-3, gt=0, description="Adam learning rate")
        init: Literal["fresh", "warm_start"] = Field(
            "fresh", description="'fresh': new weights each fit; 'warm_start': continue from the "
            "previous iteration's network")
        sample_output: Literal["bernoulli", "mean"] = Field(
            "bernoulli", description="synthetic images: Bernoulli draws from the decoder (the "
            "model's likelihood) or the decoder means (not model samples; task named "
            "vae-<dataset>-mean)")
        sample_metrics: bool = Field(
            True, description="record k-NN precision / recall / mode coverage, pixel variance "
            "ratio and class coverage of fresh samples each iteration")

        @model_validator(mode="after")
        def _resolve_sizes(self):
            n, m = _DEFAULTS[self.dataset]
            self.n_samples = n if self.n_samples is None else self.n_samples
            self.n_test = m if self.n_test is None else self.n_test
            if self.dataset == "digits" and self.n_samples + self.n_test > 1797:
                raise ValueError(f"n_samples + n_test = {self.n_samples + self.n_test}: digits "
                                 "has 1797 images")
            self.resolve_budget(self.n_samples)
            return self

    @classmethod
    def build(cls, p: Params, streams: Streams) -> Task:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        data = load_images(p.dataset)
        (Xtr, ytr), (Xte, yte) = data["train"], data["test"]
        if p.dataset != "digits" and (p.n_samples > len(Xtr) or p.n_test > len(Xte)):
            raise ValueError(f"n_samples / n_test exceed the {len(Xtr)} / {len(Xte)} images")
        real, test, train_labels, labels, clf_seeds, binarize = [], [], [], [], [], []
        for g in streams(0, Role.DATA):
            if p.dataset == "digits":
                perm = g.permutation(len(Xtr))
                te, tr = perm[:p.n_test], perm[p.n_test:p.n_test + p.n_samples]
            else:
                tr = g.choice(len(Xtr), p.n_samples, replace=False)
                te = g.choice(len(Xte), p.n_test, replace=False)
            real.append(Xtr[tr])
            train_labels.append(ytr[tr])
            test.append(Xte[te])
            labels.append(yte[te])
            clf_seeds.append(int(g.integers(2**31 - 1)))
            binarize.append(g.random(test[-1].shape) < test[-1])   # one Bernoulli draw
        real, test = np.stack(real), np.stack(test)                  # (R, n, D), (R, m, D)
        train_labels, labels = np.stack(train_labels), np.stack(labels)
        R = real.shape[0]
        mean0, cov0 = reference_moments(test.astype(np.float64))
        tail = tail_rows(test, mean0, cov0)                          # (R, k)
        classifiers, test_features = [], None
        m = min(N_EVAL, test.shape[1])
        # what samples are compared with: the test images as the sampler renders images --
        # binarised by one Bernoulli draw per pixel for Bernoulli samples, grey for means
        reference = (np.stack(binarize).astype(np.float32) if p.sample_output == "bernoulli"
                     else test)                                      # (R, m_test, D)
        if p.sample_metrics:
            for r in range(R):
                with warnings.catch_warnings():  # a feature map need not converge fully
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    classifiers.append(MLPClassifier(
                        hidden_layer_sizes=(FEATURES,), max_iter=300, random_state=clf_seeds[r]
                    ).fit(real[r], train_labels[r]))
            test_features = np.stack([classifier_features(c, x[:m])
                                      for c, x in zip(classifiers, reference)])  # (R, m, F)
            tail_m = tail_rows(test[:, :m], *reference_moments(
                test[:, :m].astype(np.float64)))                           # (R, m / 10)

        def evaluate(model: PerReplicate, iteration: int = 0) -> dict[str, np.ndarray]:
            scores = model.score_samples(test)                       # (R, m)
            out = {"test_nll": mean_nll(scores), "tail_nll": mean_nll(take_rows(scores, tail)),
                   "train_steps": train_steps_taken(model, R)}
            if p.sample_metrics:
                samples = model.sample(m, rngs=streams(iteration, Role.EVAL))   # (R, m, D)
                features = np.stack([classifier_features(c, x)
                                     for c, x in zip(classifiers, samples)])
                precision, recall, coverage, tail_recall = knn_precision_recall(
                    test_features, features, labels=labels[:, :m], tail=tail_m)
                out.update(precision=precision, recall=recall, mode_coverage=coverage,
                           tail_recall=tail_recall)
                out["pixel_variance_ratio"] = pixel_variance_ratio(samples, reference[:, :m])
                out["class_coverage"] = class_coverage(classifiers, samples, train_labels)
            return out

        def make_model():
            from ..families.vae import VAE  # torch is imported only when a model is built

            return PerReplicate(lambda: VAE(
                hidden=p.hidden, latent=p.latent, epochs=p.epochs,
                train_steps=p.family_train_steps, batch_size=p.batch_size, lr=p.lr, init=p.init,
                sample_output=p.sample_output), R,
                warm_start=p.init == "warm_start")

        return Task(
            name=f"vae-{p.dataset}" + ("-mean" if p.sample_output == "mean" else ""),
            family=cls.family, make_model=make_model,
            real=real, test=test, evaluate=evaluate, risk_metric="test_nll",
            truth={"n_features": real.shape[2]}, profile=VAE_PROFILE,
        )
