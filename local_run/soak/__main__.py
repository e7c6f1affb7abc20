"""`python -m local_run.soak`: see `local_run.soak.cli`."""

import sys

from local_run.soak.cli import main

sys.exit(main())
