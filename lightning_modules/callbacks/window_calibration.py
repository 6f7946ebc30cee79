"""Learns the cascade policies (tau and the window bounds) on the held-out split."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch import Callback
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader

from artifacts.atomic import write_json
from cascade.calibration import check_pass_fraction, check_width, fit_policies
from uncertainty.scores import EnsembleState
from uncertainty.targets import parse_target


class WindowCalibration(Callback):
    """Fits every policy of a ``CascadeModule`` on the held-out split before ``test``.

    For stage k (k = 1..M-1) it scores the held-out samples with the ensemble of the first k
    members, finds the operating threshold tau of ``target`` (``cov@r``, ``risk@c`` or
    ``fpr@p``), and sets the window [Q(q - w), Q(q + w)] around q = F(tau) (see
    ``cascade.calibration``); the single-threshold policy passes the ``pass_fraction`` least
    confident samples. The fitted policies go into the module's buffers (so its checkpoints
    carry them) and, on rank 0, to ``window_json``.

    Args:
        target: operating target, e.g. ``cov@5`` (default), ``risk@80``, ``fpr@95``.
        width: window half-width w in quantiles, in (0, 0.5].
        pass_fraction: fraction passed on by the single-threshold policy.
        window_json: path of the JSON file with tau, q and the bounds; None writes none.
        recalibrate: fit again even if the module is already calibrated (e.g. loaded from a
            calibrated cascade checkpoint).
    """

    def __init__(
        self,
        target: str = "cov@5",
        width: float = 0.1,
        pass_fraction: float = 0.2,
        window_json: str | None = "outputs/cascade/window.json",
        recalibrate: bool = False,
    ):
        super().__init__()
        self.target = parse_target(target).name
        self.width = check_width(width)
        self.pass_fraction = check_pass_fraction(pass_fraction)
        self.window_json = window_json
        self.recalibrate = recalibrate
        self.fitted: dict = {}

    @torch.no_grad()
    def heldout_stage_scores(self, pl_module, loader: DataLoader):
        """Held-out confidences and correctness of the ensembles of the first 1..M-1 members."""
        per_member, targets = [[] for _ in pl_module.members], []
        for x, y, _ in loader:
            x = x.to(pl_module.device)
            for k, member in enumerate(pl_module.members):
                per_member[k].append(member(x).float().cpu())
            targets.append(y)
        if not targets:
            raise ValueError("window calibration: the held-out split is empty")
        y = torch.cat(targets)
        logits = [torch.cat(chunks) for chunks in per_member]
        confidences, correct = [], []
        state = EnsembleState.from_logits(logits[0])
        for k in range(len(logits) - 1):
            confidences.append(state.confidence(pl_module.score))
            correct.append(state.probs.argmax(-1) == y)
            state = state.add(logits[k + 1])
        return confidences, correct

    def on_test_start(self, trainer, pl_module) -> None:
        if bool(pl_module.calibrated) and not self.recalibrate:
            rank_zero_info("WindowCalibration: module already calibrated, keeping its window")
            return
        dm = trainer.datamodule
        heldout = dm.eval_sets[dm.heldout_name]
        if len(heldout) == 0:
            raise ValueError(f"window calibration: the held-out split {dm.heldout_name!r} is empty")
        # every rank scores the whole held-out split, so every rank fits the same policies
        loader = DataLoader(heldout, batch_size=dm.hparams.batch_size, shuffle=False)
        was_training = pl_module.training
        pl_module.eval()
        with torch.inference_mode(False), torch.no_grad():
            confidences, correct = self.heldout_stage_scores(pl_module, loader)
        pl_module.train(was_training)
        policies = fit_policies(
            pl_module.policy_names,
            confidences,
            correct,
            target=self.target,
            width=self.width,
            pass_fraction=self.pass_fraction,
            heldout_name=dm.heldout_name,
        )
        pl_module.set_policies(policies)
        self.fitted = {
            "heldout": dm.heldout_name,
            "heldout_size": len(heldout),
            "score": pl_module.score,
            "target": self.target,
            "width": self.width,
            "pass_fraction": self.pass_fraction,
            "policies": {name: p.to_dict() for name, p in policies.items()},
        }
        if self.window_json and trainer.is_global_zero:
            write_json(Path(self.window_json), self.fitted)
            rank_zero_info(f"WindowCalibration: wrote {self.window_json}")

    def state_dict(self) -> dict:
        return {"fitted": self.fitted}

    def load_state_dict(self, state_dict: dict) -> None:
        self.fitted = state_dict.get("fitted", {})
