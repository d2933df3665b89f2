"""Build the benchmark models with real Keras (run with the TensorFlow venv's python).

    ~/kw-tfvenv/bin/python bench/make_models.py [--out bench/work]

Writes ``big.keras`` / ``big.h5`` (~150 MB of float32 weights) and ``small.keras`` /
``small.h5`` (~20 KB) for the same architecture: a stack of LSTM layers and a Dense head;
and, with tf_keras (the only Keras that writes them), the same big model as a legacy
SavedModel ``big_savedmodel/`` and its ``.h5`` ``big_tfk.h5``;
``dense{100,1000,4000}.{keras,h5}``: that many Dense(8) layers in a Sequential (how time grows
with the number of layers); ``mem.keras`` / ``mem.h5`` (168 MB, largest array 64 MiB: how
memory follows the largest array, not the model). ``--only`` picks some of the Keras 3 models.
Keras is needed only here and by the ``keras-load`` baseline, never by kerasweights.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# (name, LSTM width); the input size equals the width, so every LSTM holds 4 * (2w^2 + w) params.
SIZES = {"big": 1024, "small": 12}
N_LSTM = 4
TIMESTEPS = 8


def build(width: int):
    import keras

    layers = [keras.Input((TIMESTEPS, width), name="x")]
    for i in range(N_LSTM):
        layers.append(keras.layers.LSTM(width, return_sequences=i < N_LSTM - 1, name=f"lstm_{i}"))
    layers.append(keras.layers.Dense(4 * width, name="head"))
    return keras.Sequential(layers, name="stack")


def build_tf_keras(width: int):
    import tf_keras

    layers = [tf_keras.Input((TIMESTEPS, width), name="x")]
    for i in range(N_LSTM):
        layers.append(tf_keras.layers.LSTM(width, return_sequences=i < N_LSTM - 1, name=f"lstm_{i}"))
    layers.append(tf_keras.layers.Dense(4 * width, name="head"))
    return tf_keras.Sequential(layers, name="stack")


DENSE_COUNTS = (100, 1000, 4000)


def build_dense(count: int):
    """``count`` Dense(8) layers: a model whose cost is its number of layers, not its bytes.

    Keras builds and saves a Sequential recursively (a few frames per layer): the build runs in
    a thread with a big stack and a raised recursion limit.
    """
    import sys
    import threading

    import keras

    out = []

    def run() -> None:
        layers = [keras.Input((8,), name="x")]
        layers += [keras.layers.Dense(8, name=f"d{i:05d}") for i in range(count)]
        out.append(keras.Sequential(layers, name=f"dense{count}"))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 40 * count))
    threading.stack_size(1024 * 1024 * 1024)
    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return out[0]


def build_mem():
    """168 MB of float32 whose largest array is a 64 MiB Dense(4096 -> 4096) kernel."""
    import keras

    layers = [keras.Input((8, 1024), name="x")]
    layers += [keras.layers.LSTM(1024, return_sequences=i == 0, name=f"lstm_{i}") for i in range(2)]
    layers += [
        keras.layers.Dense(4096, name="up"),
        keras.layers.Dense(4096, name="wide"),
        keras.layers.Dense(1024, name="down"),
    ]
    return keras.Sequential(layers, name="mem")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "work")
    parser.add_argument("--savedmodel-only", action="store_true", help="only the tf_keras SavedModel and its .h5")
    parser.add_argument("--only", help="comma list of big, small, dense100, dense1000, dense4000, mem")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.savedmodel_only:
        save_tf_keras(args.out)
        return
    import keras

    builders = {name: (lambda width=width: build(width)) for name, width in SIZES.items()}
    builders.update({f"dense{n}": (lambda n=n: build_dense(n)) for n in DENSE_COUNTS})
    builders["mem"] = build_mem
    for name in args.only.split(",") if args.only else builders:
        start = time.perf_counter()
        model = builders[name]()
        for suffix in (".keras", ".h5"):
            path = args.out / f"{name}{suffix}"
            saver = threading.Thread(target=model.save, args=(path,))  # (the big stack set above)
            saver.start()
            saver.join()
            if not path.exists():
                raise SystemExit(f"saving {path} failed")
            print(
                f"{path}: {path.stat().st_size:,} bytes, {model.count_params():,} params "
                f"(keras {keras.__version__}, {time.perf_counter() - start:.1f} s)"
            )
    if not args.only:
        save_tf_keras(args.out)


def save_tf_keras(out: Path) -> None:
    start = time.perf_counter()
    model = build_tf_keras(SIZES["big"])
    model.save(out / "big_savedmodel", save_format="tf")
    model.save(out / "big_tfk.h5")
    print(
        f"{out / 'big_savedmodel'}, {out / 'big_tfk.h5'}: {model.count_params():,} params ({time.perf_counter() - start:.1f} s)"
    )


if __name__ == "__main__":
    main()
