"""One benchmark job per process, timed from outside by ``bench/run.py``.

    python bench/jobs.py kw-export MODEL OUT.npz      # kerasweights library: matrices -> np.savez
    python bench/jobs.py h5py-export MODEL OUT.npz    # bare h5py loop over the same datasets
    python bench/jobs.py keras-load MODEL             # keras.saving.load_model (TensorFlow venv)
    python bench/jobs.py tfkeras-load MODEL           # tf_keras.models.load_model (TensorFlow venv)
    python bench/jobs.py memory MODEL KEY [naive]     # peak memory reading one matrix (JSON)

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


JOBS = {
    "kw-export": kw_export,
    "h5py-export": h5py_export,
    "keras-load": keras_load,
    "tfkeras-load": tfkeras_load,
    "memory": memory,
}

if __name__ == "__main__":
    JOBS[sys.argv[1]](*sys.argv[2:])
