"""``python -m ppl`` runs the ``ppl`` command."""
import sys

try:
    from .startup import main
except KeyboardInterrupt:   # Ctrl-C while startup.py loads, before main's quiet handler
    sys.stderr.write("ppl: interrupted\n")
    sys.exit(130)

sys.exit(main())
