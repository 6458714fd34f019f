"""``python -m services``: the command line (``services.tools.cli``)."""

import sys

from services.tools.cli import main

if __name__ == "__main__":
    sys.exit(main())
