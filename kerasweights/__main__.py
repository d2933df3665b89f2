"""``python -m kerasweights``."""

from .cli import run

run()
