"""``python -m xpnet ...``: the same command line as the ``xpnet`` script."""

from xpnet.cli import main

raise SystemExit(main())
