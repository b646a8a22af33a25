"""``python -m xpnet.cli ...``: the same command line as the ``xpnet`` script."""

from . import main

raise SystemExit(main())
