"""Stage-aware scheduling of a served cascade: exited requests answer at once, passed-on
images wait for the next member in a queue of their own.

A server batches requests dynamically. With a fraction p of images passed on and batches of B
images, a batch needs member 2 with probability 1 - (1 - p)^B (57% at p = 0.1, B = 8), so a
*naive* batched cascade, which runs every stage a batch needs before it answers, makes every
request of the batch wait for member 2. ``StageScheduler`` runs member 1 on each batch and
completes at once every request whose images all exit there; the passed-on images wait in a
queue for member 2 (per stage k > 1), which runs on batches of its own: when ``stage_batch``
images wait, when the oldest has waited ``stage_timeout`` seconds, or when the server is idle
(``StageScheduler.due``). ``mode="naive"`` runs every stage on the batch before it answers,
with everything else the same, so the two can be compared on one server.

The decisions are those of ``run_cascade`` (``window_cascades.cascade.engine.stage_passes``
decides who is passed on, with the same ensemble state), so a served image gets the same
prediction, confidence, exit stage and flags as ``cascade predict`` gives it, up to the float
rounding of other batch compositions. The policy's sample ids (used by the ``random`` policy
only) are the images' arrival numbers, from 0. Nothing here knows HTTP or a server framework:
requests are opaque keys, and time is read from a clock given to the scheduler (seconds of a
monotonic clock; tests give a fake one).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

import torch

from window_cascades.cascade.engine import stage_passes
from window_cascades.cascade.operating_point import decision_flags
from window_cascades.cascade.policies import CascadePolicy
from window_cascades.cascade.stage_scores import Temperatures
from window_cascades.cascade.streaming import concat_states
from window_cascades.uncertainty.scores import EnsembleState

MODES = ("stage", "naive")


@dataclass(frozen=True)
class Outcome:
    """A request the scheduler is done with.

    Attributes:
        key: the request's key.
        decisions: one per image, in order: ``prediction`` (class), ``confidence`` (the score
            at the exit stage), ``exit_stage`` (members run, from 1), ``accepted`` and ``ood``
            (the fitted operating point's decisions); None when it failed.
        error: why it failed (a member raised on a batch holding its images), else None.
    """

    key: Hashable
    decisions: list[dict] | None
    error: str | None = None


@dataclass
class _StageQueue:
    """Images waiting for one member: inputs, item numbers, sample ids, ensemble states and
    the time each was queued, in arrival order (chunks of tensors, concatenated on take)."""

    x: list[torch.Tensor] = field(default_factory=list)
    items: list[torch.Tensor] = field(default_factory=list)
    ids: list[torch.Tensor] = field(default_factory=list)
    states: list[EnsembleState] = field(default_factory=list)
    since: list[torch.Tensor] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(i.numel() for i in self.items)

    def oldest(self) -> float | None:
        return float(self.since[0][0]) if self.since else None

    def put(self, x, items, ids, state: EnsembleState, now: float) -> None:
        self.x.append(x)
        self.items.append(items)
        self.ids.append(ids)
        self.states.append(state)
        self.since.append(torch.full((items.numel(),), now, dtype=torch.float64))

    def take(self, n: int):
        """The first ``n`` waiting images (all when fewer), removed from the queue."""
        x, items, ids = torch.cat(self.x), torch.cat(self.items), torch.cat(self.ids)
        since, state = torch.cat(self.since), concat_states(self.states)
        n = min(n, items.numel())
        self.x, self.items, self.ids, self.since, self.states = [], [], [], [], []
        if n < items.numel():
            self.x, self.items, self.ids = [x[n:]], [items[n:]], [ids[n:]]
            self.since, self.states = [since[n:]], [state.select(slice(n, None))]
        return x[:n], items[:n], ids[:n], state.select(slice(0, n))


class StageScheduler:
    """Early exit over a stream of requests (see the module docstring).

    Args:
        members: the members' models in cascade order (eval mode, on one device).
        policy: the fitted policy deciding who is passed on.
        score: the confidence score the cascade was calibrated with.
        operating_point: the policy's fitted operating point, ``{"accept": float | None,
            "ood": float}`` (``fitted.info["operating_points"][policy]``).
        temperatures: the fitted temperatures, if any.
        stage_batch: the most images member k > 1 runs on at once.
        stage_timeout: seconds the oldest image waiting for member k > 1 may wait before the
            member runs on a partial batch (> 0).
        mode: ``stage`` (exited requests answer at once) or ``naive`` (every stage a batch
            needs runs before the batch answers).
        clock: the time in seconds (monotonic); an image's wait for member k + 1 starts when
            stage k has decided.

    Example (``members``, ``policy`` and the images ``x_a``, ``x_b`` are yours)::

        scheduler = StageScheduler(members, policy, "msp", {"accept": 0.9, "ood": 0.2})
        done = scheduler.submit([("a", x_a), ("b", x_b)])
        while (k := scheduler.due(idle=True)) is not None:
            done += scheduler.run_stage(k)
    """

    def __init__(
        self,
        members: Sequence[torch.nn.Module],
        policy: CascadePolicy,
        score: str,
        operating_point: dict,
        temperatures: Temperatures | None = None,
        stage_batch: int = 16,
        stage_timeout: float = 0.01,
        mode: str = "stage",
        clock: Callable[[], float] = time.monotonic,
    ):
        if isinstance(stage_batch, bool) or not isinstance(stage_batch, int) or stage_batch < 1:
            raise ValueError(f"stage_batch must be an integer >= 1, got {stage_batch!r}")
        if not stage_timeout > 0:
            raise ValueError(f"stage_timeout must be > 0 seconds, got {stage_timeout!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
        if policy.num_stages != len(members):
            raise ValueError(
                f"the policy has {policy.num_stages} stage(s), the cascade {len(members)} members"
            )
        self.members, self.policy, self.score = list(members), policy, score
        self.point, self.temperatures = dict(operating_point), temperatures
        self.stage_batch, self.stage_timeout, self.mode = stage_batch, stage_timeout, mode
        self.clock = clock
        self.queues = [_StageQueue() for _ in self.members]  # queues[k]: waiting for member k
        self.calls = [0] * len(self.members)  # images each member processed
        self.exits = [0] * len(self.members)  # images that exited at each stage
        self._next_item = 0  # item numbers double as the policy's sample ids
        self._owner: dict[int, tuple[Hashable, int]] = {}  # item -> (request key, position)
        self._open: dict[Hashable, list] = {}  # request key -> [images left, decisions]

    @property
    def waiting(self) -> int:
        """Images waiting for a member after the first."""
        return sum(q.count for q in self.queues[1:])

    @property
    def open_requests(self) -> int:
        """Requests submitted and not yet complete."""
        return len(self._open)

    def _logits(self, k: int, x: torch.Tensor) -> torch.Tensor:
        self.calls[k] += x.shape[0]
        logits = self.members[k](x).float()
        if not bool(torch.isfinite(logits).all()):
            raise ValueError(f"member {k + 1} produced NaN or Inf logits")
        return logits if self.temperatures is None else self.temperatures.scale(k, logits)

    @torch.inference_mode()
    def submit(self, requests: Sequence[tuple[Hashable, torch.Tensor]]) -> list[Outcome]:
        """Run member 1 on the images of ``requests`` (one batch: each request's N x C x H x W
        images, on the members' device), and (naive mode) every later stage they need.

        Args:
            requests: (key, images) per request; keys must be unique among open requests.

        Returns:
            the requests done with (``Outcome``).

        Raises:
            ValueError: for a key already open.
            Exception: what member 1 raised (then nothing of these requests is kept: answer
                them all with an error).
        """
        keys = [key for key, _ in requests]
        if len(set(keys)) != len(keys) or any(key in self._open for key in keys):
            raise ValueError("request keys must be unique among open requests")
        sizes = [int(x.shape[0]) for _, x in requests]
        if not requests or sum(sizes) == 0:
            return [Outcome(key, []) for key in keys]
        x = torch.cat([images for _, images in requests])
        items = torch.arange(self._next_item, self._next_item + x.shape[0])
        self._next_item += x.shape[0]
        state = EnsembleState.from_logits(
            self._logits(0, x),
            self.temperatures.ensembles if self.temperatures else None,
            self.score,
        )
        item = int(items[0])
        for key, size in zip(keys, sizes, strict=True):
            self._open[key] = [size, [None] * size]
            for position in range(size):
                self._owner[item] = (key, position)
                item += 1
        done = self._decide(0, x, items, items.clone(), state)
        if self.mode == "naive":
            for k in range(1, len(self.members)):
                while self.queues[k].count:
                    done += self.run_stage(k)
        return done

    def _decide(self, k, x, items, ids, state: EnsembleState) -> list[Outcome]:
        """Stage k's decisions: exits answered, the rest queued for member k + 1."""
        conf = state.confidence(self.score)
        passed = stage_passes(self.policy, k, conf, ids)
        leaving = ~passed
        done = []
        if bool(leaving.any()):
            probs, confidence = state.probs[leaving], conf[leaving].double().cpu()
            accepted, ood = decision_flags(confidence, self.point)
            predictions = probs.argmax(-1).cpu()
            self.exits[k] += int(leaving.sum())
            for i, item in enumerate(items[leaving].tolist()):
                owner = self._owner.pop(item, None)
                if owner is None:  # its request was forgotten
                    continue
                key, position = owner
                entry = self._open[key]
                entry[1][position] = {
                    "prediction": int(predictions[i]),
                    "confidence": float(confidence[i]),
                    "exit_stage": k + 1,
                    "accepted": bool(accepted[i]),
                    "ood": bool(ood[i]),
                }
                entry[0] -= 1
                if entry[0] == 0:
                    done.append(Outcome(key, self._open.pop(key)[1]))
        if bool(passed.any()):
            queued = (x[passed], items[passed], ids[passed], state.select(passed))
            self.queues[k + 1].put(*queued, self.clock())
        return done

    def due(self, idle: bool = False) -> int | None:
        """The stage (0-based k >= 1) whose member should run now, the deepest first: its queue
        holds ``stage_batch`` images, or its oldest image has waited ``stage_timeout``, or
        (``idle``: no request is waiting for member 1) it holds any; None when none is due."""
        for k in range(len(self.members) - 1, 0, -1):
            queue = self.queues[k]
            if not queue.count:
                continue
            if idle or queue.count >= self.stage_batch:
                return k
            if self.clock() - queue.oldest() >= self.stage_timeout:
                return k
        return None

    def next_deadline(self) -> float | None:
        """When the oldest waiting image's ``stage_timeout`` runs out (monotonic seconds), or
        None when no image waits."""
        oldest = [q.oldest() for q in self.queues[1:] if q.count]
        return min(oldest) + self.stage_timeout if oldest else None

    @torch.inference_mode()
    def run_stage(self, k: int) -> list[Outcome]:
        """Run member k (0-based, >= 1) on up to ``stage_batch`` of the images waiting for it.

        Returns:
            the requests this is done with (``Outcome``): completed, or failed with the
            member's error (every request with an image in the failed batch).
        """
        queue = self.queues[k]
        if not queue.count:
            return []
        x, items, ids, state = queue.take(self.stage_batch)
        try:
            logits = self._logits(k, x)
        except Exception as err:  # noqa: BLE001 - any failure fails exactly these requests
            owners = (self._owner[i][0] for i in items.tolist() if i in self._owner)
            keys = list(dict.fromkeys(owners))
            self.forget(keys)
            error = f"member {k + 1} failed: {type(err).__name__}: {err}"
            return [Outcome(key, None, error) for key in keys]
        return self._decide(k, x, items, ids, state.add(logits))

    def forget(self, keys: Sequence[Hashable]) -> None:
        """Drop open requests (a caller answered them otherwise, e.g. with an error): their
        images still queued run but answer no one."""
        dropped = set(keys)
        for key in dropped:
            self._open.pop(key, None)
        for item in [i for i, (key, _) in self._owner.items() if key in dropped]:
            del self._owner[item]
