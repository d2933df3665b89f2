"""Optional dependencies, imported only when a feature needs them."""

from __future__ import annotations

from types import ModuleType

from .errors import MissingExtraError

__all__ = ["MissingExtraError", "pyplot", "require"]


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or fail with how to install the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(
            f"this needs {module.split('.')[0]}, which is not installed; install it with: pip install 'kerasweights[{extra}]'"
        ) from None


def pyplot() -> ModuleType:
    """matplotlib.pyplot on the non-interactive Agg backend."""
    matplotlib = require("matplotlib", "plot")
    matplotlib.use("Agg")
    return require("matplotlib.pyplot", "plot")
