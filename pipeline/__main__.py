"""`python -m pipeline` is the `riskstream` command."""

import sys

from pipeline.cli import main

sys.exit(main())
