"""Moved to :mod:`kerasweights.export.arrays`; this name keeps working."""

from __future__ import annotations

from .export.arrays import *  # noqa: F403
from .export.arrays import __all__ as __all__
