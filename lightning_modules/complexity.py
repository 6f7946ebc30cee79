"""MACs and parameter counts of a model, counted with torch's FlopCounterMode."""

from __future__ import annotations

import copy

import torch
from torch.utils.flop_counter import FlopCounterMode


def count_macs_params(model: torch.nn.Module, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(MACs, params) of one forward pass on a single input of ``input_shape`` (C, H, W).

    MACs are torch's FLOP count (which counts a multiply-add as 2 FLOPs) divided by 2, for one
    sample (batch 1) in eval mode; params counts every parameter element.
    """
    probe = copy.deepcopy(model).float().eval().cpu()
    x = torch.zeros(1, *input_shape)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        probe(x)
    macs = counter.get_total_flops() // 2
    params = sum(p.numel() for p in probe.parameters())
    return int(macs), int(params)
