"""One ensemble member: any timm classifier trained with cross-entropy."""

from __future__ import annotations

import contextvars

import timm
import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule

import window_cascades.lightning_modules.timm_models  # noqa: F401 - registers mobilenetv2_130 with timm
from window_cascades.lightning_modules.complexity import count_macs_params
from window_cascades.lightning_modules.input_sources import configured_input, with_data_input
from window_cascades.lightning_modules.lightning_private import attached_ckpt_path
from window_cascades.lightning_modules.member_input import INPUT_KEY, InputHook, MemberInput
from window_cascades.lightning_modules.member_schedule import sgd_warmup_cosine
from window_cascades.lightning_modules.member_weights import load_member_weights
from window_cascades.lightning_modules.metric_wrappers import (
    CalibrationMetrics,
    SelectiveClassificationMetrics,
)

# set while a member is rebuilt from its checkpoint (MemberModule.rebuilt)
_REBUILDING = contextvars.ContextVar("rebuilding_member", default=False)


class MemberModule(LightningModule):
    """A timm model trained as one member of a deep ensemble (one seed per member).

    Args:
        model_name: any ``timm.create_model`` name, e.g. ``resnet10t``.
        num_classes: number of classes C.
        in_chans: input channels.
        pretrained: load timm's pretrained weights (needs network access to the hub, or the
            weights already in the Hugging Face cache, e.g. with ``HF_HUB_OFFLINE=1``).
        weights: start from weights on disk instead (a safetensors file, a torch file of
            tensors, or a member checkpoint), offline; the classifier is re-initialised when
            the class count differs (``window_cascades.lightning_modules.member_weights``).
        lr: peak learning rate of SGD with momentum 0.9.
        weight_decay: L2 weight decay.
        warmup_epochs: linear warm-up length (epochs, may be fractional), then cosine to 0.
        label_smoothing: cross-entropy label smoothing.
        nesterov: Nesterov momentum (the paper's recipe uses plain momentum).
        channels_last: keep weights and inputs in channels-last memory format (faster
            convolutions on GPUs with tensor cores, with ``precision: 16-mixed``/``bf16-mixed``).
        compile: run the forward pass through ``torch.compile`` (checkpoints are unchanged).
        resolution: the member's own input resolution (pixels, square), e.g. 260 for
            efficientnet_b2 in a cascade after efficientnet_b0 at 224: inputs of another size
            are resized to it (bilinear, antialiased when shrinking) inside the model's
            forward, so one data config feeds members of different resolutions in training,
            logits caching and the online cascade, and MACs are counted at this size.
            ``"auto"``: the size of the model's own timm data config (``pretrained_cfg``, e.g.
            256 for efficientnet_b2). None: the data's size at fit, recorded in the
            checkpoint, so a later run on data of another size resizes to it.
        normalization: the mean and std (per channel) the member expects its inputs
            normalised with, ``{mean: [...], std: [...]}``, e.g. 0.5/0.5 for a ViT pretrained
            with them in a cascade fed with ImageNet's statistics: batches normalised by the
            data config are renormalised inside the forward (``member_input``). ``"auto"``: the
            model's own timm data config. None: the data's at fit. Either way the member
            records it in its checkpoints and later converts from whatever normalisation the
            data of a caching or cascade run has.
        crop: the fraction of each source image the member's evaluation inputs show
            (timm's ``crop_pct``, e.g. 0.875): from data that shows more (a larger
            ``crop_pct``), the member centre-crops its share before resizing; data that
            shows less is refused. ``"auto"``: the model's own timm data config. None: the
            data's at fit (recorded, as the normalisation is).
        resize: how the member resizes images, ``bilinear`` (default) or ``bicubic``
            (antialiased when shrinking either way); ``"auto"``: the model's timm data config.

    The member-input options are not named like the image datamodule's (``input_size``,
    ``crop_pct``, ``interpolation``, ``mean``, ``std``): Lightning refuses a module and a
    datamodule whose hparams share a name with different values.
    """

    def __init__(
        self,
        model_name: str = "resnet10t",
        num_classes: int = 10,
        in_chans: int = 1,
        pretrained: bool = False,
        weights: str | None = None,
        lr: float = 0.05,
        weight_decay: float = 5e-4,
        warmup_epochs: float = 1.0,
        label_smoothing: float = 0.0,
        nesterov: bool = True,
        channels_last: bool = False,
        compile: bool = False,
        resolution: int | str | None = None,
        normalization: str | dict | None = None,
        crop: float | str | None = None,
        resize: str = "bilinear",
    ):
        super().__init__()
        self.save_hyperparameters()
        if not timm.is_model(model_name.split(".")[0]):  # "name" or "name.pretrained_tag"
            raise ValueError(
                f"timm has no model {model_name!r} (see timm.list_models(), e.g. 'resnet18')"
            )
        if weights is not None and pretrained:
            raise ValueError("give model.pretrained or model.weights, not both")
        if isinstance(num_classes, bool) or not (isinstance(num_classes, int) and num_classes >= 2):
            raise ValueError(
                f"--model.num_classes {num_classes!r}: a classifier needs at least 2 classes "
                "(with one, accuracy is 1 and every confidence metric meaningless)"
            )
        try:
            self.model = timm.create_model(
                model_name, pretrained=pretrained, num_classes=num_classes, in_chans=in_chans
            )
        except Exception as err:  # noqa: BLE001 - hub, cache and network errors all land here
            if not pretrained:
                raise
            raise RuntimeError(
                f"could not load pretrained weights for {model_name!r} ({type(err).__name__}: "
                f"{err}); they are downloaded from the Hugging Face hub: go online once (they "
                "are cached under $HF_HOME) or set model.pretrained false"
            ) from None
        if weights is not None:
            reinit = load_member_weights(self.model, weights, model_name)
            if reinit:
                print(f"MemberModule: {weights}: re-initialised {', '.join(reinit)} (class count)")
        # the member's input, applied by its model (a pre-hook) for every caller of it
        self._input_hook = InputHook(
            configured_input(self.model, self.hparams, try_resolution=not _REBUILDING.get())
        )
        self.model.register_forward_pre_hook(self._input_hook)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        # kept out of the module tree, so state_dict keys (and checkpoints) stay the same
        self.__dict__["_compiled"] = torch.compile(self.model) if compile else None
        # held-out uncertainty metrics during fit (DDP-safe torchmetrics wrappers)
        self.val_sc = SelectiveClassificationMetrics(risks=(0.01, 0.05), coverages=(0.8,))
        self.val_cal = CalibrationMetrics()

    def on_fit_start(self) -> None:
        """Record the data's input; log the member's MACs (one sample) and parameter count
        with the run's config."""
        self.take_data_input(fit=True)
        shape = getattr(self.trainer.datamodule, "input_shape", None)
        if shape is not None and self.logger is not None:
            macs, params = count_macs_params(self.model, tuple(shape))
            self.logger.log_hyperparams({"macs": macs, "params": params})

    def on_predict_start(self) -> None:
        """Convert from the input the predict run's datamodule serves ([`take_data_input`][])."""
        self.take_data_input(fit=False)

    def on_test_start(self) -> None:
        """Convert from the input the test run's datamodule serves ([`take_data_input`][])."""
        self.take_data_input(fit=False)

    @property
    def input(self) -> MemberInput:
        """The member's input: its resolution, normalisation, crop and resize mode, and the
        data's normalisation and crop it converts from
        (``window_cascades.lightning_modules.member_input``)."""
        return self._input_hook.value

    @input.setter
    def input(self, value: MemberInput) -> None:
        self._input_hook.value = value

    @classmethod
    def rebuilt(cls, hparams: dict) -> MemberModule:
        """The member a checkpoint's hyperparameters describe, without the dry forward pass
        that refuses a resolution the model cannot take (the member was fit at it).

        Built in an empty context: inside a LightningCLI run Lightning's context variable of
        "given hyperparameters" would otherwise hand this member the caller's hparams.

        Args:
            hparams: The checkpoint's ``hyper_parameters`` (this class's arguments).

        Returns:
            The member built from ``hparams`` (the caller loads the checkpoint's weights into it).
        """
        context = contextvars.Context()
        context.run(_REBUILDING.set, True)
        return context.run(cls, **hparams)

    def take_data_input(self, fit: bool) -> None:
        """Convert from the input the trainer's datamodule serves; at ``fit``, adopt (and so
        record) the data's resolution, crop and normalisation where the member has none of its
        own (``window_cascades.lightning_modules.member_input.with_data_input``).

        Args:
            fit: True when training: the member records the data's input as its own.

        Raises:
            ValueError: when the member has its own normalisation and nothing says the data's.
        """
        self.input = with_data_input(
            self.input, self.trainer.datamodule, self.hparams.in_chans, fit
        )

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Record the member's input (resolution, normalisations, crops) in the checkpoint.

        Args:
            checkpoint: The checkpoint being saved; the input goes under its own key.
        """
        checkpoint[INPUT_KEY] = self.input.record()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The member's logits for a batch of images.

        Args:
            x: Images as the datamodule serves them, shape (N, C, H, W); the input hook
                resizes and renormalises them to the member's own input first.

        Returns:
            Logits, shape (N, C) for C classes.
        """
        if self.hparams.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return (self._compiled or self.model)(x)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Refuse a checkpoint of another architecture with both names (not a key dump);
        restore the input (resolution, normalisations, crops) the member recorded at fit.

        Args:
            checkpoint: The checkpoint being loaded.

        Raises:
            ValueError: The checkpoint holds a member of another ``model_name``.
        """
        saved = checkpoint.get("hyper_parameters", {}).get("model_name")
        if saved is not None and saved != self.hparams.model_name:
            where = attached_ckpt_path(self) or "the checkpoint"
            raise ValueError(
                f"{where} holds a {saved!r} member; this run builds {self.hparams.model_name!r}"
            )
        self.input = self.input.restored(checkpoint.get(INPUT_KEY), self.hparams.in_chans)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        """Cross-entropy (with label smoothing) on a batch; logs ``train/loss`` and ``train/acc``.

        Args:
            batch: (images, labels, sample indices).
            batch_idx: The batch's index in the epoch.

        Returns:
            The loss.
        """
        x, y, _ = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)
        acc = (logits.argmax(-1) == y).float().mean()
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True)
        self.log("train/acc", acc, prog_bar=True, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        """Log ``val/loss`` and collect the batch for the epoch's validation metrics.

        Args:
            batch: (images, labels, sample indices).
            batch_idx: The batch's index in the epoch.
        """
        x, y, _ = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)
        self.log("val/loss", loss, prog_bar=True, on_epoch=True, sync_dist=True)
        probs = logits.float().softmax(-1)
        conf, pred = probs.max(-1)
        self.val_sc.update(conf, pred, y)
        self.val_cal.update(probs, y)

    def on_validation_epoch_end(self) -> None:
        """Log ``val/acc`` and the selective-classification and calibration metrics.

        The metrics (``val/sc/...``, ``val/cal/...``) are over the whole validation split,
        gathered from every process.
        """
        # the wrappers gather every process's samples; every rank computes the same values
        values = {f"val/sc/{k}": v for k, v in self.val_sc.compute().items()}
        values.update({f"val/cal/{k}": v for k, v in self.val_cal.compute().items()})
        self.val_sc.reset()
        self.val_cal.reset()
        self.log("val/acc", values.pop("val/cal/acc"), prog_bar=True)
        self.log_dict(values)

    def capture_features(self, on: bool = True) -> None:
        """Return the penultimate features with every ``predict`` batch (``features``, N x D:
        the classifier's input; ``window_cascades.lightning_modules.feature_head``), or stop.

        Args:
            on: True to start returning them, False to stop.

        Raises:
            ValueError: a model whose classifier is not one linear layer.
        """
        from window_cascades.lightning_modules.feature_head import FeatureCapture

        # kept out of the module tree too; set only while the cached-logits writer caches features
        capture = self.__dict__.get("_feature_capture")
        if capture is not None:
            capture.remove()
        self.__dict__["_feature_capture"] = FeatureCapture(self.model) if on else None

    def predict_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> dict:
        """The member's logits for a batch, as the logits cache stores them.

        Args:
            batch: (images, labels, sample indices).
            batch_idx: The batch's index.
            dataloader_idx: The dataset's index among the run's dataloaders.

        Returns:
            ``logits`` (float32, (N, C)), ``targets`` and ``index`` (the sample indices).
        """
        x, y, index = batch
        capture = self.__dict__.get("_feature_capture")
        if capture is None:
            return {"logits": self(x).float(), "targets": y, "index": index}
        if self.hparams.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        logits = self.model(x).float()  # uncompiled: the classifier's hook runs
        return {"logits": logits, "targets": y, "index": index, "features": capture.features}

    def configure_optimizers(self) -> dict:
        """SGD with a warm-up and cosine schedule (``lightning_modules.member_schedule``)."""
        return sgd_warmup_cosine(
            self.parameters(),
            self.hparams,
            self.trainer.estimated_stepping_batches,
            self.trainer.max_epochs,
        )
