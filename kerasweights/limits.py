"""Resource limits applied while reading untrusted files."""

from __future__ import annotations

from dataclasses import dataclass

GiB = 1024**3
MiB = 1024**2


@dataclass(frozen=True)
class Limits:
    """Bounds on what kerasweights will inflate, parse or read from one file.

    The defaults are generous for real models and refuse pathological files
    (zip bombs, JSON bombs, HDF5 shape bombs) before any large allocation.
    """

    max_member_bytes: int = 8 * GiB
    """Largest decompressed size of one zip member."""
    max_compression_ratio: float = 200.0
    """Largest decompressed/compressed ratio of a compressed zip member bigger than 1 MiB."""
    max_json_bytes: int = 64 * MiB
    """Largest config or metadata JSON document."""
    max_json_depth: int = 200
    """Deepest nesting of lists and objects in a JSON document."""
    max_json_items: int = 2_000_000
    """Most values in a JSON document (counted as commas and opening brackets; Keras's
    EfficientNetB7 config has about 48,000). Bounds parsing time and memory: 64 MiB of
    ``{},{},...`` would take 1.5 GB and seconds to parse."""
    max_array_bytes: int = 4 * GiB
    """Largest single weight array read into memory."""
    max_members: int = 100_000
    """Most members of one zip archive."""
    max_nesting: int = 3
    """Deepest archive-inside-an-archive the audit opens (a zip in a zip in a .keras is 2)."""
    max_nested_bytes: int = 256 * MiB
    """Largest archive inside an archive (packed, and unpacked for gzip/bz2/xz) the audit reads into memory."""
    max_protobuf_bytes: int = 512 * MiB
    """Largest protocol buffer parsed (``saved_model.pb``, ``keras_metadata.pb``, one index entry)."""
    max_index_bytes: int = 256 * MiB
    """Largest tensor bundle index (``.index`` table), read whole when a model is opened."""


DEFAULT_LIMITS = Limits()
