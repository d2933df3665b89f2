"""One benchmark job per process, timed from outside by ``bench/run.py``.

    python bench/jobs.py kw-export MODEL OUT.npz      # kerasweights library: matrices -> np.savez
    python bench/jobs.py h5py-export MODEL OUT.npz    # bare h5py loop over the same datasets
    python bench/jobs.py keras-load MODEL             # keras.saving.load_model (TensorFlow venv)
    python bench/jobs.py tfkeras-load MODEL           # tf_keras.models.load_model (TensorFlow venv)
    python bench/jobs.py memory MODEL KEY [naive]     # peak memory reading one matrix (JSON)
    python bench/jobs.py h5py-floor MODEL             # bare h5py: config parsed, every dataset's shape
    python bench/jobs.py peak ARGV...                 # peak RSS of one command (JSON)
    python bench/jobs.py h5py-floor MODEL             # bare h5py: config parsed, every dataset's shape

Each job imports only what it uses, so a process's time is that job's whole cost.
"""

from __future__ import annotations

import sys


def kw_export(model_path: str, out: str) -> None:
    """What ``kerasweights export`` does, through the public API (used until the CLI exists)."""
    import numpy as np

    import kerasweights

    with kerasweights.open(model_path) as model:
        np.savez(out, **{key: matrix.read() for key, matrix in model.matrices().items()})


def h5py_export(model_path: str, out: str) -> None:
    """The bare baseline: every dataset of the weights file, read with h5py, saved with np.savez.

    A ``.keras`` archive's weights member is read into memory first: zipfile's member stream
    seeks backwards by re-reading from the start (Python 3.11), which is unusable for HDF5.
    """
    import io
    import zipfile

    import h5py
    import numpy as np

    if zipfile.is_zipfile(model_path):
        with zipfile.ZipFile(model_path) as archive:
            source: object = io.BytesIO(archive.read("model.weights.h5"))
    else:
        source = model_path
    arrays: dict[str, np.ndarray] = {}
    with h5py.File(source, "r") as h5:
        h5.visititems(lambda name, node: arrays.__setitem__(name, node[()]) if isinstance(node, h5py.Dataset) else None)
    np.savez(out, **arrays)


def keras_load(model_path: str) -> None:
    import os

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    keras.saving.load_model(model_path)


def tfkeras_load(model_path: str) -> None:
    """tf_keras's own loader: the only Keras that still reads a legacy SavedModel."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tf_keras

    tf_keras.models.load_model(model_path)


def memory(model_path: str, key: str, mode: str = "kerasweights") -> None:
    """Peak memory of reading one matrix, as JSON: traced numpy/Python allocations and RSS growth.

    ``naive`` copies the weights member into memory first, as a reader without in-place
    access would, for contrast.
    """
    import json
    import tracemalloc

    import h5py
    import numpy as np

    import kerasweights

    def status(field: str) -> int:
        """``VmRSS``/``VmHWM`` of this process in bytes (per address space, unlike ru_maxrss,
        which keeps the high-water mark of the parent that forked us)."""
        with open("/proc/self/status") as f:
            line = next(l for l in f if l.startswith(field + ":"))
        return int(line.split()[1]) * 1024

    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS: measure from here on
    base = status("VmRSS")
    tracemalloc.start()
    if mode == "naive":
        import io
        import zipfile

        with zipfile.ZipFile(model_path) as archive:
            member = io.BytesIO(archive.read("model.weights.h5"))
        with kerasweights.open(model_path) as model:  # only to find where the matrix lives
            matrix = model.find(key)
            dataset, index = matrix.weight.array.key, matrix.index
        with h5py.File(member, "r") as h5:
            values = h5[dataset][()][(*index, Ellipsis)]
        weight_bytes = None
    else:
        with kerasweights.open(model_path) as model:
            matrix = model.find(key)
            values = matrix.read()
            weight_bytes = matrix.weight.array.nbytes  # from metadata: nothing more is read
    checksum = float(values.sum(dtype=np.float64))  # touches every value, in small buffers
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(
        json.dumps(
            {
                "mode": mode,
                "key": key,
                "matrix_bytes": values.nbytes,
                "weight_bytes": weight_bytes,
                "traced_peak_bytes": traced,
                "rss_growth_bytes": status("VmHWM") - base,
                "checksum": checksum,
            }
        )
    )


def h5py_floor(model_path: str) -> None:
    """The floor under ``summary``: parse the config and list every dataset's shape with bare h5py.

    A ``.keras`` archive's ``model.weights.h5`` is read in place (a window on the archive), as
    kerasweights reads it; nothing is checked, named or printed beyond a count.
    """
    import io
    import json
    import struct
    import zipfile

    import h5py

    class Window(io.RawIOBase):
        def __init__(self, file: io.BufferedReader, offset: int, length: int) -> None:
            self.file, self.offset, self.length, self.pos = file, offset, length, 0

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return True

        def seek(self, pos: int, whence: int = 0) -> int:
            self.pos = (0, self.pos, self.length)[whence] + pos
            return self.pos

        def tell(self) -> int:
            return self.pos

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
            self.file.seek(self.offset + self.pos)
            n = self.file.readinto(memoryview(buffer)[: max(0, self.length - self.pos)]) or 0
            self.pos += n
            return n

    shapes: list[tuple[str, tuple[int, ...]]] = []

    def visit(name: str, node: object) -> None:
        if isinstance(node, h5py.Dataset):
            shapes.append((name, node.shape))

    if zipfile.is_zipfile(model_path):
        with open(model_path, "rb") as raw, zipfile.ZipFile(raw) as archive:
            config = json.loads(archive.read("config.json"))
            info = archive.getinfo("model.weights.h5")
            raw.seek(info.header_offset)
            header = raw.read(30)
            start = info.header_offset + 30 + sum(struct.unpack("<2H", header[26:30]))
            with h5py.File(Window(raw, start, info.file_size), "r") as h5:
                h5.visititems(visit)
    else:
        with h5py.File(model_path, "r") as h5:
            config = json.loads(h5.attrs["model_config"])
            h5.visititems(visit)
    print(config["class_name"], len(shapes))


def peak(argv: list[str]) -> None:
    """Run ``argv``; print its peak resident set (MiB) and exit status as JSON (Linux: ``wait4``)."""
    import json
    import os
    import subprocess

    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = child.stderr.read().decode() if child.stderr else ""
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    print(json.dumps({"peak_mib": round(usage.ru_maxrss / 1024, 1), "exit": child.returncode, "stderr": err[-500:]}))


JOBS = {
    "kw-export": kw_export,
    "h5py-export": h5py_export,
    "keras-load": keras_load,
    "tfkeras-load": tfkeras_load,
    "memory": memory,
    "h5py-floor": h5py_floor,
}

if __name__ == "__main__":
    if sys.argv[1] == "peak":
        peak(sys.argv[2:])
    else:
        JOBS[sys.argv[1]](*sys.argv[2:])
