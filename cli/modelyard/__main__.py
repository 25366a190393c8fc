"""``python -m modelyard`` is the ``modelyard`` command."""

from modelyard.cli import main

raise SystemExit(main())
