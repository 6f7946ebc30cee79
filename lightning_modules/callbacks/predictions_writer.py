"""Writes a calibrated cascade's per-sample decisions (``predict``) to ``predictions.csv``."""

from __future__ import annotations

import csv
import io
import sys

import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from window_cascades.artifacts.atomic import write_text
from window_cascades.artifacts.run_folder import mark_published
from window_cascades.cascade.operating_point import DECISIONS, precedence_note
from window_cascades.datamodules.contract import cascade_datamodule
from window_cascades.datamodules.image_decoding import image_error
from window_cascades.lightning_modules.callbacks.gather import gather_parts

COLUMNS = (
    "dataset",
    "index",
    "prediction",
    "confidence",
    "decision",
    "accepted",
    "ood",
    "exit_stage",
)
FILE_COLUMNS = ("path", "status", "reason")  # when a dataset reads image files


class CascadePredictionsWriter(BasePredictionWriter):
    """At the end of ``predict``, writes one row per sample of every configured dataset.

    Columns: ``dataset``, ``index`` (position in the dataset), ``prediction`` (class),
    ``confidence`` (the cascade's score at the exit stage), ``decision`` (the sample's one
    outcome: ``ood``, ``reject`` or ``accept``, in that precedence; see
    [`window_cascades.cascade.operating_point.DECISIONS`][]), ``accepted`` (1 when the
    decision is ``accept``: confidence >= the operating threshold fitted for the target on the
    policy's held-out output, the certified one when calibrated with a guarantee, and not
    flagged OOD), ``ood`` (1 when the decision is ``ood``: confidence < the threshold accepting
    ``ood_tpr`` of the held-out output), ``exit_stage`` (members run), and, when a dataset
    reads image files, ``path``, ``status`` (``ok`` or ``unreadable``) and ``reason`` (why the
    file cannot be decoded). An unreadable file gets a row with no prediction, the others are
    predicted, and one line on stdout counts and names them; with ``strict`` the first
    unreadable file stops the run instead. Written atomically (nothing on an error); rows in
    dataset order on any number of processes.

    Args:
        path: the CSV file.
        policy: the fitted policy to apply (e.g. ``window``, ``budget_window``).
        strict: refuse the run when any file cannot be read (default: list it and go on).
        datasets: the datasets to predict, by name (any role; e.g. only the new images, not
            the held-out and ID sets the data config also names); None: every dataset.
        inputs: new images to predict instead of a data config's datasets: a folder (its
            sub-folders included), a text file listing image paths (one per line, relative to
            the current folder) or one image. They are prepared as the images the cascade was
            calibrated on (``window_cascades.datamodules.predict_files``, set up by the
            command); rows name their ``dataset`` ``inputs`` and carry each file's ``path``.
        batch_size: images per batch with ``inputs``.
        num_workers: dataloader worker processes with ``inputs``.
    """

    def __init__(
        self,
        path: str = "outputs/cascade/predictions.csv",
        policy: str = "window",
        strict: bool = False,
        datasets: list[str] | None = None,
        inputs: str | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
    ):
        super().__init__(write_interval="batch")
        self.path, self.policy, self.strict = path, policy, strict
        self.datasets = list(datasets) if datasets else None
        if inputs is not None and self.datasets:
            raise ValueError(
                f"--predictions.datasets {self.datasets} names datasets of a data config; "
                "--predictions.inputs predicts its files only: give one of the two"
            )
        for option, value, low in (("batch_size", batch_size, 1), ("num_workers", num_workers, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"--predictions.{option} {value!r}: expected an integer >= {low}")
        self.inputs, self.batch_size, self.num_workers = inputs, batch_size, num_workers
        self._parts: dict[int, list[dict]] = {}

    def _names(self, dm) -> list[str]:
        """The predicted datasets, in dataloader order."""
        return self.datasets or list(dm.roles)

    def setup(self, trainer, pl_module, stage: str) -> None:
        if stage != "predict":
            return
        dm = cascade_datamodule(trainer)
        if self.datasets:  # before any prediction: the names, and a datamodule that can pick
            unknown = [n for n in self.datasets if n not in dm.roles]
            if unknown or len(set(self.datasets)) != len(self.datasets):
                raise ValueError(
                    f"--predictions.datasets {self.datasets}: "
                    + (f"unknown {unknown}" if unknown else "a dataset named twice")
                    + f"; the data config has {list(dm.roles)}"
                )
            if not hasattr(dm, "predict_names"):
                raise ValueError(
                    f"--predictions.datasets: {type(dm).__name__} predicts every dataset (it "
                    "has no predict_names); leave the option out"
                )
            dm.predict_names = list(self.datasets)
        for dataset in dm.eval_sets.values():  # before the dataloaders' workers start
            if hasattr(dataset, "skip_unreadable"):
                dataset.skip_unreadable = not self.strict

    def on_predict_start(self, trainer, pl_module) -> None:
        pl_module.check_deployable(self.policy)
        pl_module.predict_policy = self.policy
        note = precedence_note(pl_module.fitted.info["operating_points"][self.policy], self.policy)
        if note and trainer.is_global_zero:
            print(note, file=sys.stderr)

    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0
    ):
        self._parts.setdefault(dataloader_idx, []).append(prediction)

    def on_predict_epoch_end(self, trainer, pl_module) -> None:
        gathered, self._parts = gather_parts(self._parts), {}
        if trainer.is_global_zero:
            text, unreadable = self._csv(trainer, pl_module, gathered)
            write_text(self.path, text)
            mark_published(self.path)
            total = sum(len(c["index"]) for items in gathered.values() for c in items)
            scan = getattr(cascade_datamodule(trainer), "scan", None)  # --predictions.inputs
            left_out = scan.summary() if scan is not None else ""
            print(
                f"CascadePredictionsWriter: wrote {self.path}"
                + (f" ({total} rows; {left_out})" if left_out else "")
            )
            if unreadable:
                shown = ", ".join(unreadable[:3]) + (", ..." if len(unreadable) > 3 else "")
                print(
                    f"CascadePredictionsWriter: {len(unreadable)} of {total} files unreadable, "
                    f"not predicted ({shown}): status 'unreadable' in {self.path}; "
                    "--predictions.strict true refuses such a run"
                )

    def _csv(self, trainer, pl_module, gathered: dict) -> tuple[str, list[str]]:
        """The CSV text and the paths of the unreadable files."""
        dm = cascade_datamodule(trainer)
        names = self._names(dm)
        with_paths = any(hasattr(dm.eval_sets[n], "path") for n in names)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([*COLUMNS, *FILE_COLUMNS] if with_paths else COLUMNS)
        unreadable: list[str] = []
        for idx, items in sorted(gathered.items()):
            cols = {k: torch.cat([p[k] for p in items]) for k in items[0]}
            order = torch.argsort(cols["index"])
            dataset = dm.eval_sets[names[idx]]
            for i in order.tolist():
                index = int(cols["index"][i])
                path = dataset.path(index) if with_paths and hasattr(dataset, "path") else None
                if "readable" in cols and not bool(cols["readable"][i]):
                    unreadable.append(path or f"{names[idx]}[{index}]")
                    reason = (image_error(path) if path else None) or "unreadable"
                    writer.writerow(
                        [names[idx], index, *[""] * (len(COLUMNS) - 2)]
                        + [path or "", "unreadable", reason]
                    )
                    continue
                row = [
                    names[idx],
                    index,
                    int(cols["prediction"][i]),
                    repr(float(cols["confidence"][i])),
                    DECISIONS[int(cols["decision"][i])],
                    int(cols["accepted"][i]),
                    int(cols["ood"][i]),
                    int(cols["exit_stage"][i]),
                ]
                if with_paths:
                    row += [path or "", "ok", ""]
                writer.writerow(row)
        return buf.getvalue(), unreadable
