"""Start a member from weights on disk: a safetensors file, a torch file of tensors (read with
``weights_only=True``) or a Lightning checkpoint of this project, offline.

The classifier is re-initialised when its shape differs (another class count), and the first
convolution is adapted when the channel count differs (timm's ``adapt_input_conv``: 3-channel
weights for 1-channel images sum over colours). Any other difference means the file holds
another architecture, and the error names both.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict in ``path`` (``model.`` prefixes of a Lightning checkpoint removed)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"member weights not found: {path}")
    try:
        if path.suffix == ".safetensors":
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (
        SafetensorError,
        RuntimeError,
        OSError,
        ValueError,
        EOFError,
        pickle.UnpicklingError,
    ) as err:
        raise ValueError(
            f"{path}: not a readable weights file (a safetensors file, or a torch file of "
            f"tensors; pickled objects are never loaded): {str(err).splitlines()[0]}"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a mapping of parameter names to tensors")
    if state and all(k.startswith("model.") for k in state):
        state = {k.removeprefix("model."): v for k, v in state.items()}
    return state


def load_member_weights(model: torch.nn.Module, path: str | Path, model_name: str) -> list[str]:
    """Load ``path`` into ``model`` (a timm model); returns the re-initialised keys.

    Raises:
        ValueError: the file holds another architecture (unexpected, missing or reshaped
            parameters outside the classifier), naming the file and ``model_name``.
    """
    from timm.models import adapt_input_conv

    state = dict(read_weights(path))
    own = model.state_dict()
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    first = f"{cfg.get('first_conv', '')}.weight"
    if first in state and first in own and state[first].ndim == 4:
        if state[first].shape[1] != own[first].shape[1]:
            state[first] = adapt_input_conv(own[first].shape[1], state[first])
    classifier = cfg.get("classifier", "")
    reinit = [
        k
        for k in own
        if classifier
        and k.startswith(f"{classifier}.")
        and k in state
        and state[k].shape != own[k].shape
    ]
    for key in reinit:
        del state[key]
    unexpected = sorted(set(state) - set(own))
    missing = sorted(set(own) - set(state) - set(reinit))
    reshaped = sorted(k for k in state if k in own and state[k].shape != own[k].shape)
    if unexpected or missing or reshaped:
        problems = [
            f"{len(keys)} {what} (e.g. {keys[0]!r})"
            for keys, what in (
                (unexpected, "unexpected"),
                (missing, "missing"),
                (reshaped, "of another shape"),
            )
            if keys
        ]
        raise ValueError(
            f"{path}: these weights are not of a {model_name!r} model: "
            f"{', '.join(problems)} parameters"
        )
    model.load_state_dict(state, strict=False)
    return reinit
