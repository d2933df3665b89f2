"""kerasweights works with TensorFlow, Keras, JAX and PyTorch made unimportable."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap

from conftest import FIXTURES, ROOT

FRAMEWORKS = ("tensorflow", "keras", "tf_keras", "jax", "torch")

BLOCKER = textwrap.dedent(
    f"""
    import sys
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {FRAMEWORKS!r}:
                raise ImportError(f"{{name}} is blocked for this test")
    sys.meta_path.insert(0, Block())
    """
)


def test_works_with_frameworks_unimportable():
    script = BLOCKER + textwrap.dedent(
        f"""
        import kerasweights
        from kerasweights.cli import main
        for name in ("rnn_seq.keras", "functional.h5", "convlstm.keras"):
            with kerasweights.open({str(FIXTURES / "k3")!r} + "/" + name) as model:
                assert model.total_params > 0
                for matrix in model.matrices().values():
                    matrix.read()
        assert main(["summary", {str(FIXTURES / "tfk" / "functional.h5")!r}]) == 0
        tf = {str(FIXTURES / "tf")!r}
        for path, config in ((tf + "/functional_savedmodel", None), (tf + "/rnn_seq_ckpt", tf + "/rnn_seq.json"),
                             (tf + "/functional_tfjs_uint8", None), (tf + "/misc_savedmodel/saved_model.pb", None)):
            with kerasweights.open(path, config) as model:
                assert model.total_params > 0
                for matrix in model.matrices().values():
                    matrix.read()
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {FRAMEWORKS!r})
        assert not loaded, loaded
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


def test_package_source_never_imports_a_framework():
    offenders = []
    for path in (ROOT / "kerasweights").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FRAMEWORKS]
    assert offenders == []
