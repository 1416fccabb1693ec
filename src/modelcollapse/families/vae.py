"""Variational autoencoder (Kingma & Welling 2014) on flat vectors in [0, 1], in PyTorch.

One self-contained file; the only module of modelcollapse that imports torch.

Model
-----
MLP encoder ``x (D) -> ReLU(H) -> (mu, logvar) (2L)`` and decoder ``z (L) -> ReLU(H) -> logits (D)``,
prior ``z ~ N(0, I_L)``, diagonal Gaussian posterior, **Bernoulli likelihood** per pixel::

    log p(x | z) = sum_d  x_d log sigmoid(l_d) + (1 - x_d) log(1 - sigmoid(l_d))   (l = logits)

For grey levels (x_d strictly between 0 and 1) this is the usual binary cross-entropy, which is
not a normalised density on [0, 1]^D: the ELBO of a grey image is bounded above by minus its
pixel entropies, not by 0.  It is the standard choice for MNIST-like data and makes ``test_nll``
comparable across iterations of one task (the quantity model-collapse curves track), not with
continuous densities of other families.

Parameters (``n_parameters()``; D inputs, H hidden, L latent)::

    encoder  D*H + H  +  H*2L + 2L
    decoder  L*H + H  +  H*D  + D
    total    2*D*H + 3*L*H + 2*H + 2*L + D

Randomness and determinism
--------------------------
Every random choice (weight initialisation, minibatch order, reparameterisation noise, sampling)
comes from a ``torch.Generator`` seeded with ``rng.integers(2**63 - 1)`` of the ``rng`` argument
of ``fit`` / ``sample``; the torch global RNG is never used.  ``score_samples`` takes no rng: its
Monte-Carlo ELBO uses ``score_mc`` noise vectors from the fixed seed ``score_seed``, shared by all
rows (so a row's score is a deterministic function of the fitted weights and that row alone).  On CPU, ``fit``, ``sample`` and ``score_samples`` run with
``torch.use_deterministic_algorithms(True)`` and ``num_threads`` threads (default 1; both restored
afterwards), so the same rng gives bit-identical weights and samples for the same torch build.  On CUDA
(chosen automatically when available) cuBLAS may reorder float reductions between runs: results
agree only to rounding.

Feedback loops
--------------
``init="fresh"`` re-initialises the network at every ``fit``; ``init="warm_start"`` keeps the
network of the previous ``fit`` of the same object and continues training (a new Adam optimiser
each fit).  ``sample`` draws from the model's own distribution by default: z ~ N(0, I), then
x ~ Bernoulli(sigmoid(decoder(z))) pixel by pixel (``sample_output="bernoulli"``, binary images,
the likelihood the model is trained with).  ``sample_output="mean"`` returns the decoder means
sigmoid(decoder(z)) instead (smooth grey images): this drops the pixel noise of the likelihood,
a variance-reducing step that is not sampling from the model, so a loop fed with means loses
pixel variance and classes faster than the model itself does (it is an option, labelled
``-mean`` by the task).  A non-finite training loss stops the fit with ``status_ =
"non_finite"`` (collapse is data, never a crash).

Training budget
---------------
``train_steps=None`` (the ``epochs`` budget): ``epochs`` passes over the training set, so the
optimizer steps, ``epochs * ceil(n / batch_size)``, grow with the training set (an accumulating
pool gets (t + 1) times the compute at iteration t).  ``train_steps=k`` (the ``steps`` budget):
exactly k Adam steps per fit, whatever n (reshuffled epochs, the last one cut short).
``train_steps_`` records the steps the last fit took.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ._torch import (Deterministic, epoch_batches, load_network_state, network_state,
                     planned_steps, uniform_linear_init_)

__all__ = ["VAE"]


class _Net(nn.Module):
    def __init__(self, n_features: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.enc_hidden = nn.Linear(n_features, hidden)
        self.enc_out = nn.Linear(hidden, 2 * latent)
        self.dec_hidden = nn.Linear(latent, hidden)
        self.dec_out = nn.Linear(hidden, n_features)

    def encode(self, x):
        h = F.relu(self.enc_hidden(x))                       # (B, H)
        mu, logvar = self.enc_out(h).chunk(2, dim=-1)        # (B, L), (B, L)
        return mu, logvar

    def decode(self, z):
        return self.dec_out(F.relu(self.dec_hidden(z)))      # (B, D) logits

    def elbo(self, x, generator=None, eps=None):
        """Single-sample ELBO per row, (B, D) -> (B,) nats; noise ``eps`` (B, L) or (L,) is
        drawn from ``generator`` when not given."""
        mu, logvar = self.encode(x)                          # (B, L)
        if eps is None:
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps               # (B, L)
        logits = self.decode(z)                              # (B, D)
        log_lik = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)  # (B,)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)                         # (B,)
        return log_lik - kl                                  # (B,)


class VAE:
    """A single-replicate ``GenerativeModel`` (wrap with ``PerReplicate`` to batch).

    Parameters
    ----------
    hidden : int
        Hidden units of the encoder and of the decoder MLP (one hidden layer each).
    latent : int
        Latent dimension L.
    epochs : int
        Passes over the training set per ``fit`` (when ``train_steps`` is None).
    train_steps : int or None
        Adam steps per ``fit`` whatever the training-set size (the ``steps`` budget); None:
        ``epochs`` passes (the ``epochs`` budget).
    batch_size : int
    lr : float
        Adam learning rate.
    init : {"fresh", "warm_start"}
        Re-initialise at every fit, or continue from this object's previous weights.
    sample_output : {"bernoulli", "mean"}
        What ``sample`` returns: Bernoulli draws from the decoder (default; samples of the
        model's likelihood, binary pixels) or the decoder means in [0, 1] (not samples of the
        model: the pixel noise is dropped).
    score_mc : int
        Monte-Carlo samples averaged in ``score_samples``' ELBO estimate.
    score_seed : int
        Fixed seed of ``score_samples``' noise (it has no rng argument).
    device : str, optional
        Default: "cuda" if available, else "cpu".
    num_threads : int or None
        CPU threads torch uses inside ``fit`` / ``sample`` / ``score_samples`` (restored
        afterwards).  Default 1: these small MLPs run ~10-30x faster single-threaded than with
        intra-op parallelism (minibatches of 64 rows), and the result does not depend on the
        machine's core count.  None keeps torch's setting.

    Attributes
    ----------
    net_ : torch.nn.Module; status_ : str; loss_history_ : list of float (mean negative weighted
    ELBO per epoch, nats per row; a last partial epoch of ``train_steps`` counts);
    train_steps_ : int (Adam steps the last fit took; fewer than planned after a non-finite loss)

    Raises
    ------
    ValueError
        On an unknown ``init`` or ``sample_output``, or ``train_steps`` < 1.
    """

    #: what the family models (``families.plugin``)
    data_kind = "image"

    def __init__(self, *, hidden: int = 128, latent: int = 8, epochs: int = 100,
                 train_steps: int | None = None, batch_size: int = 64, lr: float = 3e-3,
                 init: str = "fresh", sample_output: str = "bernoulli", score_mc: int = 16,
                 score_seed: int = 0, device: str | None = None,
                 num_threads: int | None = 1) -> None:
        if init not in ("fresh", "warm_start"):
            raise ValueError(f"init: {init!r}; allowed: 'fresh', 'warm_start'")
        if sample_output not in ("bernoulli", "mean"):
            raise ValueError(f"sample_output: {sample_output!r}; allowed: 'bernoulli', 'mean'")
        if train_steps is not None and train_steps < 1:
            raise ValueError(f"train_steps: {train_steps}; allowed: None or an integer >= 1")
        self.hidden, self.latent, self.epochs = hidden, latent, epochs
        self.train_steps = train_steps
        self.batch_size, self.lr, self.init = batch_size, lr, init
        self.sample_output, self.score_mc, self.score_seed = sample_output, score_mc, score_seed
        self.num_threads = num_threads
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.net_: _Net | None = None
        self.status_ = "ok"
        self.loss_history_: list[float] = []
        self.train_steps_ = 0

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def count_parameters(n_features: int, hidden: int, latent: int) -> int:
        """2*D*H + 3*L*H + 2*H + 2*L + D."""
        D, H, L = n_features, hidden, latent
        return 2 * D * H + 3 * L * H + 2 * H + 2 * L + D

    def n_parameters(self) -> int:
        if self.net_ is None:
            raise RuntimeError("VAE is not fitted; use VAE.count_parameters(D, hidden, latent)")
        return sum(p.numel() for p in self.net_.parameters())

    def _generator(self, rng: np.random.Generator) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(int(rng.integers(2**63 - 1)))

    def _tensor(self, X) -> torch.Tensor:
        return torch.as_tensor(np.asarray(X, dtype=np.float32), device=self.device)

    # ------------------------------------------------------------------ protocol
    def fit(self, X, *, sample_weight=None, rng: np.random.Generator) -> "VAE":
        """Train on images X (n, D) in [0, 1] for ``planned_steps(n)`` Adam steps; optional
        ``sample_weight`` (n,) scales each row's negative ELBO (rescaled to mean 1).  Returns
        self."""
        g = self._generator(rng)
        x = self._tensor(X)                                  # (n, D)
        n, D = x.shape
        w = torch.ones(n, device=self.device) if sample_weight is None else self._tensor(
            sample_weight)                                   # (n,)
        w = w * (n / w.sum())                                # mean 1: loss = weighted mean
        with Deterministic(self.device, self.num_threads):
            fresh = (self.init == "fresh" or self.net_ is None
                     or self.net_.dec_out.out_features != D)
            if fresh:
                self.net_ = _Net(D, self.hidden, self.latent).to(self.device)
                uniform_linear_init_(self.net_, g)
            net = self.net_
            net.train()
            opt = torch.optim.Adam(net.parameters(), lr=self.lr)
            self.status_, self.loss_history_, self.train_steps_ = "ok", [], 0
            for batches in epoch_batches(n, self.batch_size, self.epochs, self.train_steps, g,
                                         self.device):
                total = torch.zeros((), device=self.device)
                seen = 0
                for idx in batches:                                         # (B,)
                    loss = -(w[idx] * net.elbo(x[idx], g)).mean()           # ()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total = total + loss.detach() * len(idx)
                    seen += len(idx)
                self.train_steps_ += len(batches)
                epoch_loss = float(total) / seen             # one sync per epoch
                self.loss_history_.append(epoch_loss)
                if not math.isfinite(epoch_loss):
                    self.status_ = "non_finite"
                    break
            net.eval()
        return self

    def planned_steps(self, n: int) -> int:
        """Adam steps a fit on n rows takes: ``train_steps``, or ``epochs * ceil(n /
        batch_size)`` when it is None."""
        return planned_steps(n, self.batch_size, self.epochs, self.train_steps)

    # ------------------------------------------------------------------ checkpoints
    def get_state(self) -> dict[str, np.ndarray]:
        """The fitted state as numpy arrays (exact round trip with ``set_state``): network
        weights ``net.<parameter>`` (float32, shapes as in the module docstring), ``status``
        and ``loss_history`` (``_torch.network_state``), ``train_steps`` (0-d int).  Raises
        RuntimeError if not fitted."""
        state = network_state(self.net_, self.status_, self.loss_history_)
        state["train_steps"] = np.asarray(self.train_steps_)
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> "VAE":
        """Restore ``get_state()`` into this (fresh) object; returns self."""
        n_features = state["net.dec_out.weight"].shape[0]
        self.net_ = _Net(n_features, self.hidden, self.latent).to(self.device)
        self.status_, self.loss_history_ = load_network_state(self.net_, state)
        self.train_steps_ = int(state.get("train_steps", 0))
        return self

    @torch.no_grad()
    def sample(self, n_samples: int, *, rng: np.random.Generator) -> np.ndarray:
        """n_samples images (n_samples, D) float32: Bernoulli draws (0 or 1) from the decoder
        at z ~ N(0, I_L), or the decoder means in [0, 1] with ``sample_output="mean"``."""
        g = self._generator(rng)
        with Deterministic(self.device, self.num_threads):
            z = torch.randn((n_samples, self.latent), generator=g, device=self.device)  # (n, L)
            p = torch.sigmoid(self.net_.decode(z))                                      # (n, D)
            if self.sample_output == "bernoulli":
                p = torch.bernoulli(p, generator=g)                                     # (n, D)
        return p.cpu().numpy().astype(np.float32)

    @torch.no_grad()
    def score_samples(self, X) -> np.ndarray:
        """Per-row ELBO in nats, shape (n,): the mean of ``score_mc`` single-sample estimates.

        The K standard-normal noise vectors (K, L) come from ``score_seed`` and are shared by all
        rows, and scoring runs in float64, so a row's score depends on that row only (not on the
        batch it is scored in: float32 GEMM rounding differs with the batch size).
        """
        g = torch.Generator(device=self.device).manual_seed(self.score_seed)
        x = self._tensor(X).double()                                         # (n, D)
        with Deterministic(self.device, self.num_threads):
            eps = torch.randn((self.score_mc, self.latent), generator=g, device=self.device)
            net = copy.deepcopy(self.net_).double()                          # float64 copy
            elbo = torch.stack([net.elbo(x, eps=e) for e in eps.double()])   # (K, n)
        return elbo.mean(0).cpu().numpy()                                    # (n,)
