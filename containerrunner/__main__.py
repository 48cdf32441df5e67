"""`python -m containerrunner`: the containerrunner command."""

from __future__ import annotations

import sys

from containerrunner.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
