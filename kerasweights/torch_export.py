"""Moved to :mod:`kerasweights.export.torch`; this name keeps working."""

from __future__ import annotations

from .export.torch import *  # noqa: F403
from .export.torch import __all__ as __all__
