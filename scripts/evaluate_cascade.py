"""Calibrate the cascade on the held-out split and evaluate it (``test``).

    python scripts/evaluate_cascade.py test --config configs/quickstart/cascade.yaml \
        --model.members '[m0.ckpt, m1.ckpt]'
"""

import sys

from window_cascades.commands.cli_entry import CASCADE, run_command
from window_cascades.commands.interrupts import quiet_on_closed_pipe

if __name__ == "__main__":
    sys.exit(quiet_on_closed_pipe(lambda: run_command(CASCADE)))
