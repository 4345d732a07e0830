"""``python -m ppl`` runs the ``ppl`` command."""
import sys

from .cli import main

sys.exit(main())
