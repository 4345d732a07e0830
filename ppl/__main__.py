"""``python -m ppl`` runs the ``ppl`` command."""
import sys

from .startup import main

sys.exit(main())
