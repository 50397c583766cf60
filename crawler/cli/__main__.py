"""`python -m crawler.cli`, the same as the `newswatch` console script."""

import sys

from crawler.cli.main import main

sys.exit(main())
