"""``python -m gendyn.diff A B``."""

import sys

from gendyn.diff.cli import main

sys.exit(main())
