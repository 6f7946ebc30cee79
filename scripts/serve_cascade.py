"""Serve a calibrated cascade over HTTP (needs the ``[serve]`` extra).

    python scripts/serve_cascade.py --ckpt_path outputs/quickstart/results/cascade.ckpt

The same command as ``window-cascades serve``; see ``--help`` and docs/howto/deploy.md.
"""

import sys

from window_cascades.commands.serve import main

if __name__ == "__main__":
    sys.exit(main())
