"""`python -m simulator`: run virtual ONVIF devices until Ctrl-C (same as `tianwang simulate`)."""

import sys

from simulator.cli import main

sys.exit(main())
