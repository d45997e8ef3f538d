"""`python -m emomusic.cli …`: the same as the `emomusic` console script (torchrun and tests use it)."""

import sys

from emomusic.cli import main

sys.exit(main())
