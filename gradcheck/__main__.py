"""``python -m gradcheck``: the command line of :mod:`gradcheck.cli`.

Example::

    python -m gradcheck check gradcheck.examples.layers:BuggyDense --shape 8,4
"""
import sys

from gradcheck.cli import main

sys.exit(main())
