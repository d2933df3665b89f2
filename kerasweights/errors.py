"""The one error hierarchy of kerasweights.

Every failure to read a model file surfaces as a :class:`KerasWeightsError`
whose message is one line naming the file and the problem.
"""

from __future__ import annotations

import os


def printable(text: str) -> str:
    """``text`` with control characters and lone surrogates escaped (``\\x1b``, ``\\udcbe``)."""
    # Names inside hostile files can hold terminal escapes or undecodable bytes (lone surrogates).
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


class KerasWeightsError(Exception):
    """Root of every error kerasweights raises on purpose."""

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None) -> None:
        self.path = os.fspath(path) if path is not None else None
        self.problem = printable(" ".join(message.split()))  # always one line
        super().__init__(f"{self.path}: {self.problem}" if self.path else self.problem)

    def with_path(self, path: str | os.PathLike[str]) -> KerasWeightsError:
        """Return a copy of this error that names ``path`` (if it named none)."""
        if self.path is not None:
            return self
        clone = type(self).__new__(type(self))
        KerasWeightsError.__init__(clone, self.problem, path)
        return clone


class UnsupportedFormatError(KerasWeightsError, ValueError):
    """The file is not a Keras model file kerasweights can read."""


class CorruptFileError(KerasWeightsError, ValueError):
    """The file looks like a Keras file but is truncated or damaged."""


class ConfigError(KerasWeightsError, ValueError):
    """The model config is missing, malformed or of the wrong type."""


class UnsafeContentError(KerasWeightsError):
    """The file asks for something kerasweights never does (follow a link, unpickle)."""


class LimitExceededError(KerasWeightsError):
    """A size, ratio or nesting limit was exceeded; nothing was inflated or read."""


class LayoutError(KerasWeightsError, ValueError):
    """Stored weights do not fit the layer's config (wrong count or shape)."""


class NotFoundError(KerasWeightsError, KeyError):
    """A layer or matrix name that the model does not have."""

    def __str__(self) -> str:  # KeyError would quote the message
        return Exception.__str__(self)


class UnsupportedLayerError(KerasWeightsError, ValueError):
    """An operation (trace, torch export) that a layer's config cannot express."""


class TraceInputError(KerasWeightsError, ValueError):
    """An input, initial state or mask array that does not fit the traced layer."""
