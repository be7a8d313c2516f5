"""`python -m gateway`: the same command line as `inkasso-gateway`."""

import sys

from gateway.cli import main

sys.exit(main())
