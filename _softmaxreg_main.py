"""The ``softmaxreg`` command's entry point (the console script), kept outside the package.

Importing the package loads NumPy, SciPy and scikit-learn, which takes a second or more; a
Ctrl-C in that time would end in a traceback, because the command's own handler
(:func:`softmaxreg.cli.main`) is not running yet. Here it ends as an interrupted run does: one
line on stderr, exit status 130.
"""

import sys


def main() -> int:
    """Import the command line, then run it; 130 if interrupted while importing."""
    try:
        from softmaxreg.cli import main as run
    except KeyboardInterrupt:
        print("softmaxreg: interrupted", file=sys.stderr)
        return 130
    return run()


if __name__ == "__main__":
    sys.exit(main())
