"""``python -m loopwise`` runs the ``loopwise`` command."""

import sys

from loopwise.view.cli import main

sys.exit(main())
