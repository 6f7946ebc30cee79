"""Evaluate cascade policies offline, on cached logits (no model is run).

    python scripts/evaluate_logits.py --logits-dir DIR --members m0 m1 \\
      --heldout NAME --id NAME [--shift NAME ...] [--ood NAME ...] --out OUT

See ``python scripts/evaluate_logits.py --help`` and docs/howto/logits.md for every option.
"""

import sys

from window_cascades.commands.interrupts import quiet_on_closed_pipe
from window_cascades.commands.offline import main

if __name__ == "__main__":
    sys.exit(quiet_on_closed_pipe(lambda: main()))
