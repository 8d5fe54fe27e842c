"""`python -m kato_web --help`: the command line (kato_web/cli.py)."""
import sys

from kato_web.cli import main

if __name__ == "__main__":
    sys.exit(main())
