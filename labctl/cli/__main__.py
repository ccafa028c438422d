# PYTHON_ARGCOMPLETE_OK
"""python -m labctl.cli: labctl's command line."""

import sys

from labctl.cli import main

sys.exit(main())
