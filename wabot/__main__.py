"""python -m wabot: hand over to the command line."""

import sys

from wabot.cli import main

sys.exit(main())
