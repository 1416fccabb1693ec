"""What the PyTorch families share: deterministic CPU execution and seeded initialisation.

Imported only by the torch families (``vae``, ``lm``, ``diffusion``), so torch is never imported
by ``import modelcollapse``.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

__all__ = ["Deterministic", "uniform_linear_init_"]


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
