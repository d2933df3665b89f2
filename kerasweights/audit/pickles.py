"""Recognise pickles of any protocol and name what they import, by reading opcodes only.

A pickle is a little program: ``GLOBAL``/``STACK_GLOBAL``/``INST`` import a module attribute
and ``REDUCE``/``OBJ``/``NEWOBJ``/``BUILD`` call what was imported. This module walks the
opcode stream with :func:`pickletools.genops`, which decodes opcodes and their arguments
without executing any of them; nothing is ever unpickled.
"""

from __future__ import annotations

import io
import pickletools
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

# Opcodes that import a global by name, and opcodes that call something.
_IMPORTS = frozenset({"GLOBAL", "INST", "STACK_GLOBAL"})
_CALLS = frozenset({"REDUCE", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "BUILD"})
_STRINGS = frozenset(
    {
        "SHORT_BINUNICODE",
        "BINUNICODE",
        "BINUNICODE8",
        "UNICODE",
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
    }
)
_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_GETS = frozenset({"GET", "BINGET", "LONG_BINGET"})
NUMPY_MAGIC = b"\x93NUMPY"


@dataclass
class PickleScan:
    """What the opcodes of one pickle do: its protocol, the globals it imports, whether it calls them."""

    protocol: int
    imports: list[str] = field(default_factory=list)
    calls: bool = False

    @property
    def imports_callable(self) -> bool:
        """Every importable global is a class or function, so any import is something it can call."""
        return bool(self.imports)


def scan(data: bytes | IO[bytes]) -> PickleScan | None:
    """The :class:`PickleScan` of ``data`` when it is a whole pickle (any protocol), else ``None``.

    Protocol 2+ pickles start with ``PROTO``; protocol 0/1 ones have no header, so they
    count only when the opcodes parse cleanly up to ``STOP`` with nothing but whitespace
    after it (text and binary files that are not pickles fail within a few bytes).
    """
    stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
    start = stream.tell()
    first = stream.read(2)
    stream.seek(start)
    if not first or (first[:1] == b"\x80" and (len(first) < 2 or not 2 <= first[1] <= 5)):
        return None
    result = PickleScan(protocol=first[1] if first[:1] == b"\x80" else 0)
    strings: list[str] = []
    memo: dict[object, str] = {}
    count = 0
    stopped = False
    try:
        with warnings.catch_warnings():  # genops decodes protocol 0 strings, warning on odd escapes
            warnings.simplefilter("ignore")
            for opcode, arg in _ops(stream):
                count += 1
                name = opcode.name
                if name in _STRINGS:
                    text = arg.decode("latin-1") if isinstance(arg, bytes) else str(arg)
                    strings.append(text)
                elif name in _PUTS and strings:
                    memo[arg] = strings[-1]
                elif name == "MEMOIZE" and strings:
                    memo[len(memo)] = strings[-1]
                elif name in _GETS and arg in memo:
                    strings.append(memo[arg])
                if name in ("GLOBAL", "INST") and isinstance(arg, str):
                    result.imports.append(".".join(arg.split(" ", 1)))
                elif name == "STACK_GLOBAL":
                    module, attr = (strings[-2], strings[-1]) if len(strings) >= 2 else ("?", "?")
                    result.imports.append(f"{module}.{attr}")
                if name in _CALLS:
                    result.calls = True
                if name == "PROTO" and isinstance(arg, int):
                    result.protocol = arg
                if name == "STOP":
                    stopped = True
                    break
    except (ValueError, EOFError, UnicodeDecodeError, OverflowError, MemoryError):
        return None
    if not stopped:
        return None
    if first[:1] != b"\x80":
        rest = stream.read(64)
        if rest.strip() or count < 2:
            return None
    result.imports = list(dict.fromkeys(result.imports))
    return result


def _ops(stream: IO[bytes]) -> Iterator[tuple[pickletools.OpcodeInfo, object]]:
    for opcode, arg, _ in pickletools.genops(stream):
        yield opcode, arg
        if opcode.name == "STOP":
            return


def npy_pickle_offset(head: bytes) -> int | None:
    """Where the pickle of a ``.npy`` object array starts (from its first bytes), else ``None``."""
    if not head.startswith(NUMPY_MAGIC) or len(head) < 10:
        return None
    major = head[6]
    size_bytes = 2 if major == 1 else 4
    length = int.from_bytes(head[8 : 8 + size_bytes], "little")
    start = 8 + size_bytes
    header = head[start : start + length]
    if b"'O'" not in header and b'"O"' not in header and b"|O" not in header:
        return None
    return start + length
