"""Feature caching reads the classifier's input of a timm model: it gives the model's logits
through the final linear layer (ResNet, a 1 x 1 convolution head), and a classifier that is
not one linear map, or features that do not give the logits, are refused by name."""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

from window_cascades.lightning_modules.feature_head import (
    FeatureCapture,
    check_reproduces,
    classifier_of,
    linear_head,
)
from window_cascades.uncertainty.feature_scores import LinearHead


@pytest.mark.parametrize("name", ["resnet10t", "mobilenetv3_small_050"])
def test_captured_features_through_the_head_give_the_model_logits(name):
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=4, in_chans=1).eval()
    capture = FeatureCapture(model)
    with torch.no_grad():
        logits = model(torch.rand(3, 1, 32, 32))
    head = linear_head(model)
    assert capture.features.shape == (3, head.weight.shape[1])
    torch.testing.assert_close(head.logits(capture.features).float(), logits, rtol=1e-5, atol=1e-5)
    check_reproduces(head, capture.features, logits)
    capture.remove()
    model(torch.rand(1, 1, 32, 32))
    assert capture.features.shape[0] == 3  # no longer captured


def test_a_one_by_one_convolution_head_is_a_linear_head():
    conv = nn.Conv2d(6, 3, 1)
    model = nn.Module()
    model.get_classifier = lambda: conv
    head = linear_head(model)
    x = torch.rand(5, 6)
    torch.testing.assert_close(
        head.logits(x).float(), conv(x[:, :, None, None])[:, :, 0, 0], rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("classifier", [nn.Identity(), None, (nn.Linear(4, 2), nn.Linear(4, 2))])
def test_a_classifier_that_is_not_one_linear_map_is_refused_by_name(classifier):
    model = nn.Module()
    if classifier is not None:
        model.get_classifier = lambda: classifier
    with pytest.raises(ValueError, match="get_classifier\\(\\) is (Identity|none|tuple)"):
        classifier_of(model)


def test_features_that_do_not_give_the_logits_are_refused():
    head = LinearHead(torch.eye(3), torch.zeros(3))
    features = torch.rand(4, 3)
    with pytest.raises(ValueError, match="largest difference"):
        check_reproduces(head, features, features * 2)
