"""Architectures of the paper that timm does not register under a name of their own.

MobileNetV2 with width multiplier 1.3 (``mobilenetv2_130``) is built by timm's own MobileNetV2
generator, exactly as timm builds ``mobilenetv2_100`` and ``mobilenetv2_140``. There are no
pretrained weights for it. Importing this module registers it with ``timm.create_model``.
"""

from __future__ import annotations

import timm
from timm.models import register_model

if not timm.is_model("mobilenetv2_130"):

    @register_model
    def mobilenetv2_130(pretrained: bool = False, **kwargs):
        """MobileNetV2 with a 1.3 channel multiplier (trained from scratch in the paper)."""
        from timm.models.efficientnet import _gen_mobilenet_v2

        return _gen_mobilenet_v2("mobilenetv2_130", 1.3, pretrained=pretrained, **kwargs)
