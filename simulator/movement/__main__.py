"""`python -m simulator.movement` (same as `tianwang movement`)."""

import sys

from simulator.movement.cli import main

sys.exit(main())
