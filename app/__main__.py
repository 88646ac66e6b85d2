"""``python -m app``: the Fashion-16 command line."""
import sys

from .cli import main

sys.exit(main())
