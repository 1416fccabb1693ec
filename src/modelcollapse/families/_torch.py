"""What the PyTorch families share: deterministic CPU execution, seeded initialisation and the
training budget (minibatch schedule) of a fit.

Imported only by the torch families (``vae``, ``lm``, ``diffusion``), so torch is never imported
by ``import modelcollapse``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn as nn

__all__ = ["Deterministic", "uniform_linear_init_", "network_state", "load_network_state",
           "planned_steps", "epoch_batches"]


class Deterministic:
    """On CPU, for the duration of a block: ``torch.use_deterministic_algorithms(True)`` and
    ``torch.set_num_threads(num_threads)`` (both restored afterwards).

    ``fill_uninitialized=False`` also turns off torch's NaN-filling of new tensors in
    deterministic mode (about 10% of an LM training step); only for code that never reads
    memory it has not written."""

    def __init__(self, device: torch.device, num_threads: int | None, *,
                 fill_uninitialized: bool = True) -> None:
        self.on = device.type == "cpu"
        self.num_threads = num_threads
        self.fill = fill_uninitialized

    def __enter__(self):
        self.prev = torch.are_deterministic_algorithms_enabled()
        self.prev_fill = torch.utils.deterministic.fill_uninitialized_memory
        self.prev_threads = torch.get_num_threads()
        if self.on:
            torch.use_deterministic_algorithms(True)
            if not self.fill:
                torch.utils.deterministic.fill_uninitialized_memory = False
            if self.num_threads:
                torch.set_num_threads(self.num_threads)

    def __exit__(self, *exc):
        if self.on:
            torch.use_deterministic_algorithms(self.prev)
            torch.utils.deterministic.fill_uninitialized_memory = self.prev_fill
            if self.num_threads and torch.get_num_threads() != self.prev_threads:
                torch.set_num_threads(self.prev_threads)


def uniform_linear_init_(net: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default ``nn.Linear`` init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and
    biases, drawn from ``generator`` (never the global RNG), module by module in order."""
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Linear):
                bound = 1.0 / math.sqrt(module.in_features)
                for p in (module.weight, module.bias):
                    if p is not None:
                        u = torch.rand(p.shape, generator=generator, device=p.device,
                                       dtype=p.dtype)
                        p.copy_((2.0 * u - 1.0) * bound)


def network_state(net: nn.Module, status: str, loss_history: list[float]) -> dict:
    """A fitted torch family's checkpoint as plain arrays (``families.base`` state protocol):
    ``net.<parameter>`` weights (copies, on CPU), ``status`` (0-d str), ``loss_history``
    (epochs,) float64.  Raises RuntimeError if ``net`` is None (not fitted)."""
    if net is None:
        raise RuntimeError("the model is not fitted: nothing to save")
    state = {f"net.{k}": v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}
    state["status"] = np.asarray(status)
    state["loss_history"] = np.asarray(loss_history, dtype=np.float64)
    return state


def load_network_state(net: nn.Module, state: dict) -> tuple[str, list[float]]:
    """Load ``network_state``'s weights into ``net`` (exactly; strict) and put it in eval mode;
    returns (status, loss_history)."""
    device = next(net.parameters()).device
    net.load_state_dict({k[len("net."):]: torch.as_tensor(np.array(v), device=device)
                         for k, v in state.items() if k.startswith("net.")}, strict=True)
    net.eval()
    return str(np.asarray(state["status"])), [float(v) for v in np.asarray(state["loss_history"])]


def planned_steps(n: int, batch_size: int, epochs: int, train_steps: int | None) -> int:
    """Optimizer steps one fit takes on n rows: ``train_steps`` when given (the ``steps``
    budget: the same for every training-set size), else ``epochs * ceil(n / batch_size)`` (the
    ``epochs`` budget: the training-set size decides the compute).

    Raises ValueError for ``n < 1``, ``batch_size < 1``, ``epochs < 1`` or ``train_steps < 1``.
    """
    if n < 1 or batch_size < 1 or epochs < 1:
        raise ValueError(f"n, batch_size, epochs: {n}, {batch_size}, {epochs}; allowed: >= 1")
    if train_steps is not None:
        if train_steps < 1:
            raise ValueError(f"train_steps: {train_steps}; allowed: None or an integer >= 1")
        return int(train_steps)
    return epochs * math.ceil(n / batch_size)


def epoch_batches(n: int, batch_size: int, epochs: int, train_steps: int | None,
                  generator: torch.Generator, device) -> Iterator[list[torch.Tensor]]:
    """The minibatches of one fit, epoch by epoch: for each epoch a list of index tensors (B,)
    (the last one of an epoch may be shorter) cut from a fresh ``torch.randperm(n)`` of
    ``generator``.

    ``train_steps`` None: ``epochs`` full passes.  Otherwise exactly ``train_steps`` minibatches
    in all, as many epochs as that takes, the last one cut short.  Each permutation is drawn
    only when its epoch starts (so random draws made while training an epoch come after it), and
    none is drawn once the steps are used up: with ``train_steps = epochs * ceil(n /
    batch_size)`` the batches, and the random stream, equal those of the ``epochs`` budget.
    """
    left = planned_steps(n, batch_size, epochs, train_steps)
    while left > 0:
        perm = torch.randperm(n, generator=generator, device=device)            # (n,)
        batches = [perm[i:i + batch_size] for i in range(0, n, batch_size)][:left]
        left -= len(batches)
        yield batches
