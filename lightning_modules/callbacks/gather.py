"""Per-dataloader ``predict`` outputs of every process, gathered on each (for the writers)."""

from __future__ import annotations

import torch.distributed as dist


def gather_parts(parts: dict[int, list]) -> dict[int, list]:
    """``parts`` (dataloader index -> this process's batch outputs) merged over all processes;
    unchanged in a single process. Callers restore dataset order from each row's index."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return parts
    everyone = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, parts)
    gathered: dict[int, list] = {}
    for process_parts in everyone:
        for idx, items in process_parts.items():
            gathered.setdefault(idx, []).extend(items)
    return gathered
