"""``python -m xpnet.bench [--quick] ...``: see ``xpnet.bench.main``."""

from . import main

raise SystemExit(main())
