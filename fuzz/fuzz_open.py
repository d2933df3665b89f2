"""Coverage-guided fuzzing of ``kerasweights.open`` with atheris (libFuzzer). Not run in CI.

The contract is the one ``tests/test_fuzz.py`` checks with hypothesis: whatever the bytes,
the model opens and every weight reads, or a :class:`KerasWeightsError` with a one-line
message is raised. Anything else (another exception, a crash, a hang) is a finding.

    pip install atheris                      # wheels for CPython 3.8-3.11 on Linux x86-64
    python3 fuzz/fuzz_open.py --seed fuzz/corpus          # copy the fixtures in as seeds
    python3 fuzz/fuzz_open.py fuzz/corpus -timeout=10 -rss_limit_mb=2048 -max_total_time=3600
    python3 fuzz/fuzz_open.py crash-<sha1>   # replay one input (works without atheris too)

``-timeout`` makes libFuzzer report an input that runs longer than 10 s (a hang in
libhdf5, say) as a crash and save it; ``fuzz/corpus`` and ``crash-*`` files are not
committed.
"""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_one_input(data: bytes) -> None:
    import kerasweights
    from kerasweights import KerasWeightsError, LayoutError
    from kerasweights.cli import _render as render

    source = io.BytesIO(data)
    source.name = "<fuzz>"
    try:
        with kerasweights.open(source) as model:
            render.summary_table(model)
            for layer in model.walk():
                try:
                    for matrix in layer.matrices().values():
                        matrix.read()
                except LayoutError:
                    pass
            for weight in model.weights():
                weight.read()
    except KerasWeightsError as exc:
        if "\n" in str(exc) or not str(exc).startswith("<fuzz>: "):
            raise AssertionError(f"badly formed error message: {exc!r}") from None


def seed(corpus: Path) -> None:
    """Copy every single-file fixture into ``corpus`` (libFuzzer mutates these)."""
    corpus.mkdir(parents=True, exist_ok=True)
    for path in sorted((ROOT / "fixtures").rglob("*")):
        if path.is_file() and path.suffix in (".keras", ".h5") and path.stat().st_size < 1_000_000:
            shutil.copy(path, corpus / f"{path.parent.name}-{path.name}")
    print(f"{len(list(corpus.iterdir()))} seeds in {corpus}")


def main(argv: list[str]) -> None:
    if len(argv) == 3 and argv[1] == "--seed":
        seed(Path(argv[2]))
        return
    try:
        import atheris
    except ImportError:  # replay mode: run the given files once each
        for name in argv[1:]:
            test_one_input(Path(name).read_bytes())
            print(f"{name}: ok")
        return
    with atheris.instrument_imports():
        import kerasweights  # noqa: F401  (instrumented for coverage feedback)
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
