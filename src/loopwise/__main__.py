"""``python -m loopwise`` runs the ``loopwise`` command."""

import sys

from loopwise.cli import main

sys.exit(main())
