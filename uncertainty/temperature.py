"""Temperature scaling, fitted on a held-out split by minimising the NLL.

A member's logits z become z / T; an ensemble's averaged probabilities p become
softmax(log p / T) (pool, then scale). T > 0 is found by L-BFGS on log T.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor, max_iter: int = 100) -> float:
    """The temperature T minimising the mean NLL of softmax(logits / T) on ``targets``.

    Works inside ``torch.inference_mode`` (as in a Lightning test run) by fitting on a copy.

    Args:
        logits: N x C logits of one model on the held-out split.
        targets: N class indices.
        max_iter: L-BFGS iterations at most.
    """
    if logits.shape[0] == 0:
        raise ValueError("temperature scaling needs at least one held-out sample")
    with torch.inference_mode(False), torch.enable_grad():
        z = logits.detach().clone().double()
        y = targets.detach().clone().long()
        log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(z / log_t.exp(), y)
            loss.backward()
            return loss

        opt.step(closure)
        return float(log_t.detach().exp())


def fit_probs_temperature(probs: torch.Tensor, targets: torch.Tensor) -> float:
    """Temperature of averaged ensemble probabilities (fitted on their log).

    Args:
        probs: N x C averaged ensemble probabilities on the held-out split.
        targets: N class indices.
    """
    return fit_temperature(torch.log(probs.double().clamp_min(1e-12)), targets)


def scale_probs(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(log p / T).

    Args:
        probs: N x C class probabilities (rows sum to 1).
        temperature: T > 0; T > 1 flattens the probabilities, T < 1 sharpens them.
    """
    if temperature == 1.0:
        return probs
    return torch.softmax(torch.log(probs.clamp_min(1e-12)) / temperature, dim=-1).to(probs.dtype)
