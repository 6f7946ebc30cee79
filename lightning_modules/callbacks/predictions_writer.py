"""Writes a calibrated cascade's per-sample decisions (``predict``) to ``predictions.csv``."""

from __future__ import annotations

import csv
import io

import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from artifacts.atomic import write_text
from datamodules.contract import cascade_datamodule
from lightning_modules.callbacks.gather import gather_parts

COLUMNS = ("dataset", "index", "prediction", "confidence", "accepted", "ood", "exit_stage")


class CascadePredictionsWriter(BasePredictionWriter):
    """At the end of ``predict``, writes one row per sample of every configured dataset.

    Columns: ``dataset``, ``index`` (position in the dataset), ``prediction`` (class),
    ``confidence`` (the cascade's score at the exit stage), ``accepted`` (confidence >= the
    operating threshold fitted for the target on the policy's held-out output, the certified
    one when calibrated with a guarantee), ``ood`` (confidence < the threshold accepting
    ``ood_tpr`` of the held-out output), ``exit_stage`` (members run), and ``path`` when the
    dataset reads image files. Written atomically; rows in dataset order on any number of
    processes.

    Args:
        path: the CSV file.
        policy: the fitted policy to apply (e.g. ``window``, ``budget_window``).
    """

    def __init__(self, path: str = "outputs/cascade/predictions.csv", policy: str = "window"):
        super().__init__(write_interval="batch")
        self.path, self.policy = path, policy
        self._parts: dict[int, list[dict]] = {}

    def on_predict_start(self, trainer, pl_module) -> None:
        pl_module.check_deployable(self.policy)
        pl_module.predict_policy = self.policy

    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0
    ):
        self._parts.setdefault(dataloader_idx, []).append(prediction)

    def on_predict_epoch_end(self, trainer, pl_module) -> None:
        gathered, self._parts = gather_parts(self._parts), {}
        if trainer.is_global_zero:
            write_text(self.path, self._csv(trainer, pl_module, gathered))
            print(f"CascadePredictionsWriter: wrote {self.path}")

    def _csv(self, trainer, pl_module, gathered: dict) -> str:
        dm = cascade_datamodule(trainer)
        names = list(dm.roles)
        with_paths = any(hasattr(dm.eval_sets[n], "path") for n in names)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([*COLUMNS, "path"] if with_paths else COLUMNS)
        for idx, items in sorted(gathered.items()):
            cols = {k: torch.cat([p[k] for p in items]) for k in items[0]}
            order = torch.argsort(cols["index"])
            dataset = dm.eval_sets[names[idx]]
            for i in order.tolist():
                index = int(cols["index"][i])
                row = [names[idx], index, int(cols["prediction"][i]),
                       repr(float(cols["confidence"][i])), int(cols["accepted"][i]),
                       int(cols["ood"][i]), int(cols["exit_stage"][i])]  # fmt: skip
                if with_paths:
                    path = dataset.path(index) if hasattr(dataset, "path") else None
                    row.append(path or "")
                writer.writerow(row)
        return buf.getvalue()
