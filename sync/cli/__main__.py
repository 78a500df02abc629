"""``python -m sync.cli``: the same entry point as the ``pcsync`` script."""

import sys

from sync.cli import main

sys.exit(main())
