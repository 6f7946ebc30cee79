"""A timm model's penultimate features and final linear layer, for feature scores.

The features a score reads are what the model's classifier (``model.get_classifier()``)
receives: a forward hook on it captures its input while the model runs as usual (its input
conversion and pre-hooks included), so the logits stay exactly the model's. For a ResNet that
is the pooled (post-ReLU) activation, for a ConvNeXt the pooled and normalised one, for a ViT
the normalised class token. The classifier must be one linear map (``nn.Linear``, or a 1 x 1
``nn.Conv2d``) whose output is the model's output; anything else is refused by name, and
``check_reproduces`` refuses features whose head does not give the model's logits.
"""

from __future__ import annotations

import torch
from torch import nn

from window_cascades.uncertainty.feature_scores import LinearHead


def classifier_of(model: nn.Module) -> nn.Module:
    """The model's final linear layer (timm's ``get_classifier``).

    Raises:
        ValueError: a model without one, a classifier that is not one linear map (e.g. a
            distilled model's two heads), or a model built without classes.
    """
    get = getattr(model, "get_classifier", None)
    head = get() if callable(get) else None
    name = type(model).__name__
    if isinstance(head, nn.Linear):
        return head
    if isinstance(head, nn.Conv2d) and head.kernel_size == (1, 1) and head.groups == 1:
        return head
    found = type(head).__name__ if head is not None else "none"
    raise ValueError(
        f"feature caching needs a model whose classifier is one linear layer (nn.Linear or a "
        f"1 x 1 nn.Conv2d) giving its logits; {name}'s get_classifier() is {found}"
    )


def linear_head(model: nn.Module) -> LinearHead:
    """The classifier's weight (C x D) and bias (C; zeros when it has none), float32."""
    head = classifier_of(model)
    weight = head.weight.detach().float()
    if weight.ndim == 4:
        weight = weight[:, :, 0, 0]
    bias = head.bias.detach().float() if head.bias is not None else torch.zeros(weight.shape[0])
    return LinearHead(weight.cpu().clone(), bias.cpu().clone())


class FeatureCapture:
    """Captures the classifier's input (N x D) on every forward pass of ``model``.

    Args:
        model: a timm model (``classifier_of`` must accept it).

    Example:
        >>> import timm
        >>> model = timm.create_model("resnet10t", num_classes=3, in_chans=1).eval()
        >>> capture = FeatureCapture(model)
        >>> logits = model(torch.rand(2, 1, 32, 32))
        >>> capture.features.shape, check_reproduces(linear_head(model), capture.features, logits)
        (torch.Size([2, 512]), None)
        >>> capture.remove()
    """

    def __init__(self, model: nn.Module):
        self.features: torch.Tensor | None = None
        self._handle = classifier_of(model).register_forward_hook(self._keep)

    def _keep(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        self.features = inputs[0].detach().flatten(1)

    def remove(self) -> None:
        """Stop capturing."""
        self._handle.remove()


def check_reproduces(head: LinearHead, features: torch.Tensor, logits: torch.Tensor) -> None:
    """Refuse features whose head does not give the model's logits (a classifier followed by
    more computation): within 1e-4 relative and absolute.

    Raises:
        ValueError: naming the largest difference.
    """
    recomputed = features.float() @ head.weight.to(features.device).T + head.bias.to(
        features.device
    )
    if not torch.allclose(recomputed, logits.float(), rtol=1e-4, atol=1e-4):
        worst = float((recomputed - logits.float()).abs().max())
        raise ValueError(
            "feature caching: the classifier's input times its weight does not give the "
            f"model's logits (largest difference {worst:.3g}); this model computes its logits "
            "otherwise, and its features cannot be scored"
        )
