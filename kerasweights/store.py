"""Stored weight arrays, read lazily: shape and dtype come from file metadata."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

Index = tuple[int | slice, ...]
Reader = Callable[[Index], np.ndarray]  # reads ``array[index]``; ``()`` is the whole array


@dataclass(eq=False)
class StoredArray:
    """One array as the file stores it.

    ``key`` is where it lives in the file (``model_weights/gru/gru/gru_cell/kernel:0``,
    ``layers/gru/cell/vars/0``); ``stored_name`` is the name the file gives it, if any.
    Nothing is read until :meth:`read` (the whole array, kept unless ``cache=False``) or
    :meth:`read_part` (a slice, never kept) is called.
    """

    key: str
    stored_name: str
    shape: tuple[int, ...]
    dtype: str
    _reader: Reader = field(repr=False)
    _value: np.ndarray | None = field(default=None, repr=False)

    @property
    def size(self) -> int:
        return math.prod(self.shape)  # (exact: a hostile shape cannot wrap around as int64 would)

    @property
    def nbytes(self) -> int:
        itemsize = 2 if self.dtype == "bfloat16" else np.dtype(self.dtype).itemsize
        return self.size * itemsize

    def read(self, cache: bool = True) -> np.ndarray:
        """The array's values, read from the file on first call and kept unless ``cache=False``
        (a scan over many arrays then holds one at a time)."""
        if self._value is not None:
            return self._value
        value = self._reader(())
        value.flags.writeable = False  # views handed to users must not alter the cache
        if cache:
            self._value = value
        return value

    def read_part(self, index: Index) -> np.ndarray:
        """``values[index]``: a view when the array is loaded, else only that part is read.

        Reading one gate of a big kernel then costs the gate's size in memory, not the kernel's.
        """
        if self._value is not None:
            return self._value[(*index, Ellipsis)]  # Ellipsis: a view even for scalars
        value = self._reader(index)  # (the whole array for ``()``: read, not kept)
        value.flags.writeable = False
        return value

    @property
    def is_loaded(self) -> bool:
        return self._value is not None
