"""What the PyTorch families share: deterministic CPU execution and seeded initialisation.

Imported only by the torch families (``vae``, ``lm``, ``diffusion``), so torch is never imported
by ``import modelcollapse``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn

__all__ = ["Deterministic", "uniform_linear_init_", "network_state", "load_network_state"]


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
