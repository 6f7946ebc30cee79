"""Write the README's quick-start table from a results folder, or check that it matches one.

    python scripts/update_readme_table.py outputs/quickstart/results           # rewrite README
    python scripts/update_readme_table.py outputs/quickstart/results --check   # exit 1 if stale

The block between ``<!-- quickstart-table datasets: ... -->`` and ``<!-- /quickstart-table -->``
in README.md is the table the quick start printed for the named datasets. ``--check`` accepts
values within ``--atol`` (default 0.05) of the README's: another CPU model trains slightly
different members (see README "One result").
"""

import sys

from window_cascades.commands.interrupts import quiet_on_closed_pipe
from window_cascades.commands.readme_table import main

if __name__ == "__main__":
    sys.exit(quiet_on_closed_pipe(lambda: main()))
