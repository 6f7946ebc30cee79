"""Train one ensemble member (``fit``) or cache its logits (``predict``).

    python scripts/train_member.py fit --config configs/quickstart/member.yaml --seed_everything 0
    python scripts/train_member.py predict --config configs/quickstart/member.yaml \
        --ckpt_path CKPT --cache.logits_dir DIR --cache.member m0
"""

import sys

from window_cascades.commands.cli_entry import MEMBER, run_command
from window_cascades.commands.interrupts import quiet_on_closed_pipe

if __name__ == "__main__":
    sys.exit(quiet_on_closed_pipe(lambda: run_command(MEMBER)))
