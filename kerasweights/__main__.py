"""``python -m kerasweights``."""

from .cli import main

raise SystemExit(main())
