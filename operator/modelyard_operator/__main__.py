"""``python -m modelyard_operator [flags]`` is ``modelyard operator [flags]``."""

import sys

from modelyard.cli import main

raise SystemExit(main(["operator", *sys.argv[1:]]))
