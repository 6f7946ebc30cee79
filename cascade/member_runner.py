"""The live stage source of the engine: members run on just the samples a stage asks for.

Online early exit (``CascadeModule``) hands [`MemberRunner`][] to ``run_cascade``: member k
processes only the samples that stage k - 1 passed on. Several policies evaluated on the same
batch share the member calls, so a sample one policy needs that another policy already had
computed is not run again.
"""

from __future__ import annotations

import torch


class MemberRunner:
    """Runs a member on the requested samples of one batch ``x``, once per sample.

    Args:
        members: the members, in cascade order.
        x: the batch (N x ...), on the members' device.
        calls: per member, a running count of the samples it processed (updated in place).
    """

    def __init__(self, members, x: torch.Tensor, calls: list[int]):
        self.members, self.x, self.calls = members, x, calls
        self.cache: dict[int, torch.Tensor] = {}
        self.done: dict[int, torch.Tensor] = {}

    def __call__(self, k: int, index: torch.Tensor) -> torch.Tensor:
        """The float32 logits (on the CPU) of member k + 1 (``k``: its 0-based place) for the
        samples at positions ``index``."""
        n = self.x.shape[0]
        if k not in self.done:
            self.done[k] = torch.zeros(n, dtype=torch.bool)
        missing = index[~self.done[k][index]]
        if missing.numel():
            logits = self.members[k](self.x[missing.to(self.x.device)]).float().cpu()
            if not torch.isfinite(logits).all():
                raise ValueError(f"member {k} produced NaN or Inf logits")
            if k not in self.cache:
                self.cache[k] = torch.empty(n, logits.shape[-1])
            self.cache[k][missing] = logits
            self.done[k][missing] = True
            self.calls[k] += missing.numel()
        return self.cache[k][index]
