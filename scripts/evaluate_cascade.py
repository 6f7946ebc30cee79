"""Calibrate the window on the held-out split and evaluate the cascade (``test``).

    python scripts/evaluate_cascade.py test --config configs/quickstart/cascade.yaml \
        --model.members '[m0.ckpt, m1.ckpt]'
"""

from lightning_modules.cli import CascadeCLI

if __name__ == "__main__":
    CascadeCLI()
