"""A modelcollapse model family in its own package: a mixture of diagonal Gaussians fitted by
gradient descent on the (weighted) negative log-likelihood with torch.

Registered through the entry point ``modelcollapse.families: torch-mixture`` in pyproject.toml;
the installed version is recorded in every run's manifest.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__version__ = "0.1.0"


class TorchMixture:
    """K diagonal Gaussians; ``fit`` honours ``sample_weight`` (weighting curation works).

    Parameters
    ----------
    n_components : int
    n_steps : int
        Full-batch Adam steps per fit.
    lr : float
    """

    def __init__(self, n_components: int = 8, n_steps: int = 200, lr: float = 0.05) -> None:
        self.n_components = n_components
        self.n_steps = n_steps
        self.lr = lr

    def _log_density(self, X: torch.Tensor) -> torch.Tensor:
        # (n, d) -> (n,): log sum_k pi_k N(x; mu_k, diag(sigma_k^2))
        z = (X[:, None, :] - self.means_t) / self.log_scales_t.exp()          # (n, K, d)
        log_normal = -0.5 * (z**2).sum(-1) - self.log_scales_t.sum(-1) \
            - 0.5 * X.shape[1] * math.log(2 * math.pi)                           # (n, K)
        return torch.logsumexp(torch.log_softmax(self.logits_t, 0) + log_normal, dim=1)

    def fit(self, X, *, sample_weight=None, rng: np.random.Generator) -> "TorchMixture":
        X = torch.as_tensor(np.asarray(X), dtype=torch.float64)
        n, d = X.shape
        w = torch.ones(n, dtype=torch.float64) if sample_weight is None else \
            torch.as_tensor(np.asarray(sample_weight), dtype=torch.float64)
        start = torch.as_tensor(rng.choice(n, size=self.n_components), dtype=torch.long)
        self.means_t = X[start].clone().requires_grad_(True)
        self.log_scales_t = torch.full((self.n_components, d), float(X.std(0).mean().log()),
                                       dtype=torch.float64, requires_grad=True)
        self.logits_t = torch.zeros(self.n_components, dtype=torch.float64, requires_grad=True)
        params = [self.means_t, self.log_scales_t, self.logits_t]
        optimizer = torch.optim.Adam(params, lr=self.lr)
        for _ in range(self.n_steps):
            optimizer.zero_grad()
            loss = -(w * self._log_density(X)).sum() / w.sum()
            loss.backward()
            optimizer.step()
        for p in params:
            p.requires_grad_(False)
        return self

    def sample(self, n_samples: int, *, rng: np.random.Generator) -> np.ndarray:
        weights = torch.softmax(self.logits_t, 0).numpy()
        component = rng.choice(self.n_components, size=n_samples, p=weights / weights.sum())
        noise = rng.standard_normal((n_samples, self.means_t.shape[1]))
        return (self.means_t.numpy()[component]
                + np.exp(self.log_scales_t.numpy()[component]) * noise)

    def score_samples(self, X) -> np.ndarray:
        with torch.no_grad():
            return self._log_density(torch.as_tensor(np.asarray(X), dtype=torch.float64)).numpy()
