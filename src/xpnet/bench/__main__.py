"""``python -m xpnet.bench [--quick] ...``: see ``xpnet.bench.main``."""

from xpnet.bench import main

raise SystemExit(main())
