"""``python -m gradcheck``: the command line of :mod:`gradcheck.cli`.

Example::

    python -m gradcheck check gradcheck.examples.layers:BuggyDense --shape 8,4
"""
import sys

try:
    from gradcheck.cli import main
except KeyboardInterrupt:  # Ctrl-C while Python still imports: the same one line as later
    sys.stderr.write("gradcheck: interrupted\n")
    sys.exit(130)

sys.exit(main())
