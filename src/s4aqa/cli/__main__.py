"""`python -m s4aqa.cli`: the same as the `s4aqa` command."""

import sys

from s4aqa.cli import main

sys.exit(main())
