"""``python -m window_cascades``: the ``window-cascades`` command."""

import sys

from window_cascades.commands.window_cascades import main

if __name__ == "__main__":
    sys.exit(main())
