"""`python -m proxyd` runs the command line (same as the `proxyd` console script)."""

import sys

from proxyd.cli.launch import main

sys.exit(main())
