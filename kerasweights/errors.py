"""The one error hierarchy of kerasweights, grouped by what the caller can do.

Every failure surfaces as a :class:`KerasWeightsError` whose message is one line naming the
file and the problem. Two branches tell a caller what to do next:

- the file cannot be used (:class:`UnsupportedFormatError`, :class:`CorruptFileError`,
  :class:`ConfigError`, :class:`UnsafeContentError`, :class:`LimitExceededError`,
  :class:`LayoutError`, :class:`MissingFileError`), or this installation lacks an optional
  extra (:class:`MissingExtraError`): the command line exits 3;
- the request does not fit the file (:class:`UsageError`: an unknown name, a layer the
  operation cannot handle, an input of the wrong shape, an output that cannot be written):
  the command line exits 2.
"""

from __future__ import annotations

import os


def printable(text: str) -> str:
    """``text`` with control characters and lone surrogates escaped (``\\x1b``, ``\\udcbe``)."""
    # Names inside hostile files can hold terminal escapes or undecodable bytes (lone surrogates).
    if text.isprintable():
        return text  # (the usual case, without a step per character)
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


class MissingFileError(KerasWeightsError, FileNotFoundError):
    """The file or folder does not exist (a :class:`FileNotFoundError` too, for Python callers)."""

    def __str__(self) -> str:  # OSError would format its arguments
        return Exception.__str__(self)


class MissingExtraError(KerasWeightsError, ImportError):
    """An optional dependency is not installed; the message says which extra to install."""


class UsageError(KerasWeightsError):
    """What was asked does not fit the file: a name, an operation, an input or an output."""


class OutputError(UsageError):
    """An output file that cannot be written."""


class NotFoundError(UsageError, KeyError):
    """A layer or matrix name that the model does not have."""

    def __str__(self) -> str:  # KeyError would quote the message
        return Exception.__str__(self)


class UnsupportedLayerError(UsageError, ValueError):
    """An operation (trace, torch export) that a layer's config cannot express."""


class TraceInputError(UsageError, ValueError):
    """An input, initial state or mask array that does not fit the traced layer."""
