"""The ``kerasweights`` command: a thin argparse layer over the public API.

Exit codes: 0 success; 1 findings or differences; 2 usage error (including an
unknown layer or matrix name, a layer the operation cannot handle, an input that does not
fit, an output that cannot be written); 3 the input cannot be read as a Keras model file,
or an optional extra is missing. :data:`EXIT_CODES` is the one map from error to code.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence
from typing import NoReturn

from .. import __version__
from ..errors import KerasWeightsError, MissingExtraError, UsageError
from . import _commands

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_UNREADABLE = 3

# The one place that decides the exit code of an error, for every command: the first match wins.
EXIT_CODES: tuple[tuple[type[KerasWeightsError], int], ...] = (
    (UsageError, EXIT_USAGE),  # the file was read; what was asked of it does not fit
    (KerasWeightsError, EXIT_UNREADABLE),  # the file (or this installation) cannot do it
)


def exit_code(error: KerasWeightsError) -> int:
    """The exit code for ``error``, from :data:`EXIT_CODES`."""
    return next(code for kind, code in EXIT_CODES if isinstance(error, kind))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for every command, or only for ``command`` (imports just that module)."""
    parser = argparse.ArgumentParser(
        prog="kerasweights",
        description="Read Keras model files (.h5, .keras) without TensorFlow and name every weight.",
    )
    parser.add_argument("--version", action="version", version=f"kerasweights {__version__}")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for module in _commands.COMMANDS if command is None else [_commands.load(command)]:
        module.add_parser(sub)
    for subparser in sub.choices.values():  # `--debug` after the command too; SUPPRESS keeps one given before
        subparser.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help="show Python tracebacks for errors"
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code instead of exiting."""
    parser = build_parser(_commands.chosen(sys.argv[1:] if argv is None else argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 for --help/--version
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.run(args))
    except KerasWeightsError as exc:
        if args.debug:
            raise
        from ._output import error  # (here: summary --json prints nothing else through _output)

        return error(str(_named(exc, args)), exit_code(exc))
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        print("kerasweights: interrupted", file=sys.stderr)
        return 130


def run() -> NoReturn:
    """The ``kerasweights`` console script and ``python -m kerasweights``: :func:`main`, then exit."""
    code = main()
    # The process ends here, and interpreter shutdown would still run full garbage collections
    # over every object numpy, h5py and kerasweights made: about 20 ms, a tenth of a summary.
    gc.freeze()
    sys.exit(code)


def _named(exc: KerasWeightsError, args: argparse.Namespace) -> KerasWeightsError:
    """``exc``, naming the model file(s) the command was given if it named none: every error line
    about a file names it. The library names the file wherever it knows it; this is the net under
    every path it missed. (A missing optional package is not about a file; audit reports file
    problems as findings, so what it raises is about its own set-up.)
    """
    if exc.path is not None or isinstance(exc, MissingExtraError):
        return exc
    inputs = [getattr(args, name) for name in ("file", "a", "b") if isinstance(getattr(args, name, None), str)]
    if not inputs:
        return exc
    return exc.with_path(" vs ".join("<stdin>" if name == "-" else name for name in inputs))
