"""audit's graph-op check: SavedModel ops that read or write files or run Python are findings."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import FIXTURES

from kerasweights.audit import audit_file
from kerasweights.cli import main
from kerasweights.formats import _protobuf

TRACED = FIXTURES / "tf" / "misc_savedmodel"  # tf_keras's own traced functions, nothing added


def with_function(tmp_path: Path, ops: list[str], top_level: list[str] = ()) -> Path:
    """A copy of the traced SavedModel with one more library function holding ``ops``."""
    folder = tmp_path / "model"
    shutil.copytree(TRACED, folder)
    path = folder / "saved_model.pb"
    model = _protobuf.parse(_protobuf.SavedModel, path.read_bytes(), "saved_model.pb", 1 << 30)
    graph = model.meta_graphs[0].graph_def
    function = graph.library.function.add()
    function.signature.name = "__inference_call_666"
    for i, op in enumerate(ops):
        function.node_def.add(name=f"n{i}", op=op)
    for i, op in enumerate(top_level):
        graph.node.add(name=f"top{i}", op=op)
    path.write_bytes(model.SerializeToString())
    return folder


def found(folder: Path | str) -> list[tuple[str, str, str]]:
    return [(f.code, f.severity, f.message) for f in audit_file(folder).findings if f.code == "graph-op"]


def test_a_traced_keras_savedmodel_has_no_graph_op_finding():
    assert found(TRACED) == []  # its SaveV2/RestoreV2 functions are tf.keras's own


def test_file_and_python_ops_are_findings(tmp_path):
    folder = with_function(tmp_path, ["ReadFile", "EagerPyFunc", "EagerPyFunc", "MatMul"], ["WriteFile"])
    assert found(folder) == [
        (
            "graph-op",
            "error",
            (
                "saved_model.pb: 2 EagerPyFunc ops in function __inference_call_666: runs Python code when "
                "TensorFlow runs the model (never run here)"
            ),
        ),
        (
            "graph-op",
            "error",
            (
                "saved_model.pb: a ReadFile op in function __inference_call_666: reads a file when TensorFlow "
                "runs the model (never run here)"
            ),
        ),
        (
            "graph-op",
            "error",
            (
                "saved_model.pb: a WriteFile op in the top-level graph: writes a file when TensorFlow runs the "
                "model (never run here)"
            ),
        ),
    ]


def test_save_ops_outside_the_saver_functions_are_findings(tmp_path):
    folder = with_function(tmp_path, ["SaveV2", "PrintV2"])
    assert [(c, s) for c, s, _ in found(folder)] == [("graph-op", "error"), ("graph-op", "warning")]


def test_found_when_the_weights_are_unreadable_too(tmp_path, capsys):
    folder = with_function(tmp_path, ["PyFunc"])
    (folder / "variables" / "variables.index").write_bytes(b"broken")
    codes = {f.code for f in audit_file(folder).findings}
    assert codes == {"unreadable", "graph-op"}
    assert main(["audit", str(folder / "saved_model.pb")]) == 1
    assert "graph-op" in capsys.readouterr().out
