"""``python -m cleaning``: see :mod:`cleaning.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
