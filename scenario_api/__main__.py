"""``python -m scenario_api``: see :mod:`scenario_api.cli`."""

import sys

from .cli import main

sys.exit(main())
