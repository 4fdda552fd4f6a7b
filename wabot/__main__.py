"""python -m wabot: hand over to the command line."""

import sys

from .cli import main

sys.exit(main())
