"""Writes a member's predictions as cached logits, and optionally its features and final
linear layer (the layout of docs/howto/logits.md)."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from window_cascades.artifacts.cached_features import (
    FEATURE_DTYPES,
    HEAD_FILE,
    save_cached_features,
    save_head,
)
from window_cascades.artifacts.cached_logits import (
    file_sha256,
    new_generation,
    save_cached_logits,
)
from window_cascades.artifacts.faults import fault_point
from window_cascades.artifacts.member_meta import save_member_meta
from window_cascades.artifacts.run_folder import mark_published
from window_cascades.datamodules.contract import cascade_datamodule
from window_cascades.lightning_modules.callbacks.gather import gather_parts
from window_cascades.lightning_modules.complexity import count_macs_params
from window_cascades.lightning_modules.feature_head import check_reproduces, linear_head


class CachedLogitsWriter(BasePredictionWriter):
    """Collects ``predict`` outputs per dataloader and writes one file per dataset.

    Rows are put back in dataset order by sample index, so the files are the same for any
    number of processes. Dataset names come from the datamodule's ``roles`` (data contract).
    The files and ``meta.json`` (written last) share one ``generation`` id, so the reader
    refuses the mix an interrupted run leaves.

    With ``features``, every dataset's penultimate features go to
    ``<member>/features/<dataset>.safetensors`` and the final linear layer to
    ``<member>/head.safetensors``, with the same generation (feature scores read them;
    ``window_cascades.artifacts.cached_features``).

    Args:
        logits_dir: root of the cache; files go to ``<logits_dir>/<member>/``.
        member: member name (folder name), e.g. ``m0``.
        checkpoint: the checkpoint the logits come from (its SHA-256 goes to meta.json).
        features: cache the features and the head too.
        features_dtype: ``float32`` or ``float16`` (half the disk; scores within about 4e-3).
    """

    def __init__(
        self,
        logits_dir: str,
        member: str,
        checkpoint: str | None = None,
        features: bool = False,
        features_dtype: str = "float32",
    ):
        super().__init__(write_interval="batch")
        if features_dtype not in FEATURE_DTYPES:
            raise ValueError(
                f"--cache.features_dtype {features_dtype!r}: expected one of {list(FEATURE_DTYPES)}"
            )
        self.logits_dir, self.member, self.checkpoint = Path(logits_dir), member, checkpoint
        self.features, self.features_dtype = features, features_dtype
        self._parts: dict[int, list[dict]] = {}
        self._head = None

    def on_predict_start(self, trainer, pl_module) -> None:
        if self.features:
            pl_module.capture_features(True)
            self._head = linear_head(pl_module.model)

    def on_predict_end(self, trainer, pl_module) -> None:
        if self.features:
            pl_module.capture_features(False)

    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0
    ):
        if self.features:
            check_reproduces(self._head, prediction["features"], prediction["logits"])
        self._parts.setdefault(dataloader_idx, []).append(
            {k: v.detach().cpu() for k, v in prediction.items()}
        )

    def on_predict_epoch_end(self, trainer, pl_module) -> None:
        names = list(cascade_datamodule(trainer).roles)
        gathered, self._parts = gather_parts(self._parts), {}
        if not trainer.is_global_zero:
            return
        generation = new_generation()  # in every file's header, then in meta.json, written last
        for idx, items in sorted(gathered.items()):
            if idx:
                fault_point("logits")
            index = torch.cat([p["index"] for p in items])
            order = torch.argsort(index)
            logits = torch.cat([p["logits"] for p in items])[order]
            targets = torch.cat([p["targets"] for p in items])[order]
            save_cached_logits(
                self.logits_dir, self.member, names[idx], logits, targets, generation
            )
            if self.features:
                features = torch.cat([p["features"] for p in items])[order]
                save_cached_features(
                    self.logits_dir,
                    self.member,
                    names[idx],
                    features,
                    generation,
                    self.features_dtype,
                )
        if self.features:
            save_head(self.logits_dir, self.member, self._head, generation)
        x = trainer.datamodule.eval_sets[names[0]][0][0]
        macs, params = count_macs_params(pl_module.model, tuple(x.shape))
        meta = {
            "model_name": pl_module.hparams.model_name,
            "num_classes": pl_module.hparams.num_classes,
            "input_shape": list(x.shape),
            "macs": macs,
            "params": params,
            "checkpoint": str(self.checkpoint) if self.checkpoint else None,
            "checkpoint_sha256": file_sha256(self.checkpoint) if self.checkpoint else None,
            "datasets": [names[i] for i in sorted(gathered)],
            "generation": generation,
        }
        if self.features:
            meta["features"] = {
                "dim": int(self._head.weight.shape[1]),
                "dtype": self.features_dtype,
                "head": f"{HEAD_FILE}.safetensors",
            }
        save_member_meta(self.logits_dir, self.member, meta)
        mark_published(self.logits_dir / self.member)  # complete: meta.json is written last
