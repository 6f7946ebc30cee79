"""Run an experiment: train the members, cache their logits, calibrate and evaluate
(``window-cascades pipeline``; see ``commands/pipeline_command.py``).

    python scripts/run_pipeline.py --config configs/quickstart/pipeline.yaml [--logger wandb]
"""

import sys

from window_cascades.commands.interrupts import quiet_on_closed_pipe
from window_cascades.commands.pipeline_command import main

if __name__ == "__main__":
    sys.exit(quiet_on_closed_pipe(lambda: main()))
