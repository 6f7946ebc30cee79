"""Early exit over a stream of batches, with full batches for every member.

``run_cascade`` runs member k + 1 on the few samples of one batch that stage k passed on: with
a 20% pass fraction the second member sees batches of about 51 instead of 256, which on a GPU
costs nearly as much as a full batch (launch-bound), so the cascade is not as fast as its MACs
say. [`StreamingCascade`][] keeps, per stage, a queue of passed-on samples (their inputs and
ensemble state) across incoming batches and runs member k only when ``batch_size`` samples
wait for it (and once more, on what is left, when the stream ends). Outputs come back in input
order. Decisions stay on the members' device; the same policies decide as in ``run_cascade``,
so the outputs are the same, up to the float rounding of other batch sizes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from window_cascades.cascade.engine import CascadeResult, stage_passes
from window_cascades.cascade.policies import CascadePolicy
from window_cascades.cascade.stage_scores import Temperatures
from window_cascades.uncertainty.scores import EnsembleState


def concat_states(states: list[EnsembleState]) -> EnsembleState:
    """One state of the samples of several (same member count, same score)."""

    def cat(name):
        parts = [getattr(s, name) for s in states]
        return None if parts[0] is None else torch.cat(parts)

    first = states[0]
    return EnsembleState(
        cat("prob_sum"),
        cat("max_logit_sum"),
        cat("logsumexp_sum"),
        cat("neg_entropy_sum"),
        first.count,
        first.temperatures,
        first.score,
    )


@dataclass
class _Waiting:
    """Samples waiting for one member: their inputs, positions in the stream, ids, state."""

    x: list[torch.Tensor] = field(default_factory=list)
    positions: list[torch.Tensor] = field(default_factory=list)
    ids: list[torch.Tensor] = field(default_factory=list)
    states: list[EnsembleState] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(p.numel() for p in self.positions)

    def take(self, n: int):
        """The first ``n`` waiting samples (all when fewer), removed from the queue."""
        x, pos, ids = torch.cat(self.x), torch.cat(self.positions), torch.cat(self.ids)
        state = concat_states(self.states)
        n = min(n, pos.numel())
        if n == pos.numel():
            self.x, self.positions, self.ids, self.states = [], [], [], []
            return x, pos, ids, state
        self.x, self.positions, self.ids = [x[n:]], [pos[n:]], [ids[n:]]
        self.states = [state.select(slice(n, None))]
        return x[:n], pos[:n], ids[:n], state.select(slice(0, n))


class StreamingCascade:
    """Push batches, then [`finish`][]: the cascade's outputs for every pushed sample.

    Args:
        members: the members in cascade order (on one device, in eval mode).
        policy: the fitted policy deciding who is passed on.
        score: the confidence score.
        batch_size: the batch member k > 0 waits for.
        temperatures: optional fitted temperatures.
    """

    def __init__(
        self,
        members: list[torch.nn.Module],
        policy: CascadePolicy,
        score: str,
        batch_size: int,
        temperatures: Temperatures | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.members, self.policy, self.score = members, policy, score
        self.batch_size, self.temperatures = batch_size, temperatures
        self.waiting = [_Waiting() for _ in members]
        self.done: list[tuple] = []  # (positions, probs, confidence, exit stage) chunks
        self.pushed = 0
        self.calls = [0] * len(members)  # samples each member processed

    def _logits(self, k: int, x: torch.Tensor) -> torch.Tensor:
        self.calls[k] += x.shape[0]
        logits = self.members[k](x).float()
        return logits if self.temperatures is None else self.temperatures.scale(k, logits)

    @torch.inference_mode()
    def push(self, x: torch.Tensor, sample_ids: torch.Tensor | None = None) -> None:
        """Run member 1 on a batch and every later member whose queue has filled a batch."""
        n = x.shape[0]
        positions = torch.arange(self.pushed, self.pushed + n, device=x.device)
        self.pushed += n
        ids = positions if sample_ids is None else sample_ids.to(x.device).long()
        ensembles = self.temperatures.ensembles if self.temperatures else None
        state = EnsembleState.from_logits(self._logits(0, x), ensembles, self.score)
        self._decide(0, x, positions, ids, state)
        self._run_waiting(full_only=True)

    def _decide(self, k: int, x, positions, ids, state: EnsembleState) -> None:
        conf = state.confidence(self.score)
        passed = stage_passes(self.policy, k, conf, ids)
        leaving = ~passed
        stage = torch.full((int(leaving.sum()),), k + 1, device=conf.device)
        self.done.append(
            (positions[leaving], state.probs[leaving].float(), conf[leaving].double(), stage)
        )
        if bool(passed.any()):
            queue = self.waiting[k + 1]
            queue.x.append(x[passed])
            queue.positions.append(positions[passed])
            queue.ids.append(ids[passed])
            queue.states.append(state.select(passed))

    def _run_waiting(self, full_only: bool) -> None:
        for k in range(1, len(self.members)):
            queue = self.waiting[k]
            while queue.count >= self.batch_size or (not full_only and queue.count > 0):
                x, positions, ids, state = queue.take(self.batch_size)
                self._decide(k, x, positions, ids, state.add(self._logits(k, x)))

    @torch.inference_mode()
    def finish(self) -> CascadeResult:
        """Run what still waits (partial batches), and return every sample's outputs in the
        order pushed (on the CPU)."""
        self._run_waiting(full_only=False)
        positions = torch.cat([d[0] for d in self.done]).cpu()
        order = torch.argsort(positions)
        probs, conf, stage = (torch.cat([d[i] for d in self.done]).cpu() for i in (1, 2, 3))
        self.done = [(positions, probs, conf, stage)]
        return CascadeResult(probs[order], conf[order], stage[order].long())
