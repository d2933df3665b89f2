"""``kerasweights export --to pytorch``: files of torch parameters that reproduce Keras's outputs
(run through PyTorch's documented equations, tests/torch_reference.py), constructor arguments
on stdout, refusals and --force warnings on stderr."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch_reference
from conftest import FIXTURES, truth, truth_arrays

from kerasweights.cli import main

K3 = FIXTURES / "k3"
BI_G = "torch.nn.GRU(input_size=5, hidden_size=3, bias=True, batch_first=True, bidirectional=True)"


def load(path):
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    from safetensors.numpy import load_file

    return load_file(path)


def unwrapped(stdout: str) -> str:
    """The printed constructors joined back onto one line each (they wrap at 80 columns)."""
    return re.sub(r",\n +", ", ", stdout)


def module_tensors(tensors, prefix):
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"], ids=["npz", "safetensors"])
def test_export_writes_modules_that_reproduce_keras(tmp_path, capsys, suffix):
    out = tmp_path / f"rnn{suffix}"
    argv = ["export", str(K3 / "functional.keras"), "--to", "pytorch", "-o", str(out), "--skip-inexact"]
    assert main(argv) == 0
    stdout, stderr = capsys.readouterr()
    assert max(len(line) for line in stdout.splitlines() if not line.startswith("wrote ")) <= 80
    assert stdout.splitlines()[0] == "embed: torch.nn.Embedding(num_embeddings=20, embedding_dim=4)"
    assert stdout.splitlines()[-2] == "skipped mha: MultiHeadAttention has no torch.nn counterpart here"
    assert stdout.splitlines()[1:3] == [
        "lstm_seq: torch.nn.LSTM(input_size=4, hidden_size=5, bias=True,",
        "                        batch_first=True, bidirectional=False)",
    ]
    assert f"bi_g: {BI_G}" in unwrapped(stdout)
    assert stderr == (
        "kerasweights: warning: layer 'encoder/lstm_nb': use_bias=False, so bias_ih and bias_hh are zeros "
        "(keep them at zero if you train)\n"
    )
    tensors = load(out)
    assert len(tensors) == 30 and {"bi_g.weight_hh_l0_reverse", "encoder.lstm_nb.bias_ih_l0"} <= set(tensors)
    assert {"embed.weight", "td.proj.weight", "encoder.enc_bn.running_var", "conv.bias", "ln.weight"} <= set(tensors)
    arrays = truth_arrays("functional")
    for path, module, kwargs in [
        ("bi_g", "GRU", {"hidden_size": 3, "batch_first": True, "bidirectional": True}),
        ("lstm_seq", "LSTM", {"hidden_size": 5, "batch_first": True}),
        ("encoder/lstm_nb", "LSTM", {"hidden_size": 4, "batch_first": True}),
    ]:
        state = module_tensors(tensors, path.replace("/", ".") + ".")
        got, _, _ = torch_reference.run(module, kwargs, state, arrays[f"{path}/input"])
        np.testing.assert_allclose(got, arrays[f"{path}/sequences"], atol=1e-5, rtol=0)


def test_one_layer_of_a_tf_keras_file(tmp_path, capsys):
    out = tmp_path / "bi.npz"
    argv = ["export", str(FIXTURES / "tfk/bidir_lstm.h5"), "--to", "pytorch", "--layer", "bi_s", "-o", str(out)]
    assert main(argv) == 0
    stdout, stderr = capsys.readouterr()
    assert unwrapped(stdout).splitlines()[0] == (
        "bi_s: torch.nn.RNN(input_size=8, hidden_size=3, nonlinearity='relu', bias=True, batch_first=True, "
        "bidirectional=True)"
    )
    assert "merge_mode='sum'; torch concatenates the directions" in stderr
    tensors = load(out)
    params = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    assert sorted(tensors) == sorted(f"bi_s.{p}_l0{s}" for s in ("", "_reverse") for p in params)
    arrays = truth_arrays("bidir_lstm", "tfk")
    kwargs = {"hidden_size": 3, "nonlinearity": "relu", "batch_first": True, "bidirectional": True}
    got, h_n, _ = torch_reference.run("RNN", kwargs, module_tensors(tensors, "bi_s."), arrays["bi_s/input"])
    np.testing.assert_allclose(got[..., :3] + got[..., 3:], arrays["bi_s/sequences"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(h_n[0] + h_n[1], arrays["bi_s/output"], atol=1e-5, rtol=0)  # Keras's last output


def test_weights_only_file_with_its_config(tmp_path, capsys):
    out = tmp_path / "gru.npz"
    argv = ["export", str(K3 / "rnn_seq.weights.h5"), "--to", "pytorch", "--layer", "enc_gru", "-o", str(out)]
    assert main(argv) == 2
    assert (
        "no layer config in the file (activations and go_backwards unknown: pass --config)" in capsys.readouterr().err
    )
    assert main([*argv, "--config", str(K3 / "rnn_seq.json")]) == 0
    arrays = truth_arrays("rnn_seq")
    state = module_tensors(load(out), "enc_gru.")
    got, _, _ = torch_reference.run("GRU", {"hidden_size": 5, "batch_first": True}, state, arrays["enc_gru/input"])
    np.testing.assert_allclose(got, arrays["enc_gru/sequences"], atol=1e-5, rtol=0)


def test_refusal_names_the_layer_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "rnn.npz"
    assert main(["export", str(K3 / "rnn_seq.keras"), "--to", "pytorch", "-o", str(out)]) == 2
    stderr = capsys.readouterr().err
    assert stderr == (
        f"kerasweights: error: {K3 / 'rnn_seq.keras'}: cannot export to PyTorch exactly: layer 'gru_ra_false': "
        "reset_after=False (torch.nn.GRU computes only the reset_after=True form, which applies the reset gate "
        "after the recurrent matmul), go_backwards=True (torch has no backwards-only module) "
        "(pass --force to write it anyway, --skip-inexact to leave it out, or --layer to pick one)\n"
    )
    assert truth("rnn_seq")["recurrent"][2]["config"]["reset_after"] is False  # what Keras said
    assert not out.exists() and not list(tmp_path.iterdir())


def test_force_writes_everything_with_one_warning_per_refused_layer(tmp_path, capsys):
    out = tmp_path / "rnn.npz"
    assert main(["export", str(K3 / "rnn_seq.keras"), "--to", "pytorch", "--force", "-o", str(out)]) == 0
    stdout, stderr = capsys.readouterr()
    assert [line.split(":")[0] for line in unwrapped(stdout).splitlines()[:5]] == [
        "my_rnn",
        "enc_gru",
        "gru_ra_false",
        "lstm_last",
        "head",
    ]
    assert stderr.splitlines() == [
        "kerasweights: warning: layer 'gru_ra_false': forced export although reset_after=False (torch.nn.GRU computes "
        "only the reset_after=True form, which applies the reset gate after the recurrent matmul), go_backwards=True "
        "(torch has no backwards-only module); the torch module will not reproduce Keras's outputs"
    ]
    assert len(load(out)) == 18  # 4 recurrent layers x 4 tensors, and the Dense head's weight and bias


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        pytest.param(
            ["functional.keras", "--layer", "mha"],
            2,
            "layer 'mha' is a MultiHeadAttention, which has no torch.nn counterpart here",
            id="attention",
        ),
        pytest.param(
            ["rnn_seq.keras", "--layer", "nope"], 2, "no layer 'nope'; layers with weights:", id="unknown-layer"
        ),
        pytest.param(
            ["convlstm.keras"],
            2,
            "layer 'clstm': ConvLSTM2D has no torch.nn counterpart here (pass --skip-inexact to leave it out",
            id="convlstm",
        ),
        pytest.param(
            ["activations.keras", "--layer", "lstm_relu"],
            2,
            "layer 'lstm_relu' cannot be exported to PyTorch exactly: activation='relu' (torch.nn.LSTM supports only tanh)",
            id="lstm-relu",
        ),
        pytest.param(
            ["activations.keras", "--layer", "gru_hard"],
            2,
            "recurrent_activation='hard_sigmoid' (torch.nn.GRU gates use sigmoid)",
            id="hard-sigmoid",
        ),
        pytest.param(
            ["rnn_seq.keras", "--raw"],
            2,
            "--raw exports Keras's stored arrays; it cannot be combined with --to pytorch",
            id="raw",
        ),
    ],
)
def test_what_cannot_be_exported(tmp_path, capsys, argv, code, message):
    file, *rest = argv
    out = tmp_path / "x.npz"
    assert main(["export", str(K3 / file), "--to", "pytorch", "-o", str(out), *rest]) == code
    stderr = capsys.readouterr().err
    assert stderr.startswith("kerasweights: error: ") and message in stderr and stderr.count("\n") == 1
    assert not out.exists()


def test_skip_inexact_lists_every_skipped_layer_with_its_reason(tmp_path, capsys):
    out = tmp_path / "t.npz"
    argv = ["export", str(FIXTURES / "layers/torch_layers.keras"), "--to", "pytorch", "-o", str(out), "--skip-inexact"]
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    skipped = [line for line in stdout.splitlines() if line.startswith("skipped ")]
    assert [line.split(":")[0] for line in skipped] == ["skipped c1_causal", "skipped c1_same_s2", "skipped ln_rms"]
    assert "  note: apply Keras's activation 'relu' after the module\n    (torch.nn.functional.relu)" in stdout
    assert max(len(line) for line in stdout.splitlines() if not line.startswith("wrote ")) <= 80
    assert not any(k.startswith(("c1_causal.", "ln_rms.")) for k in load(out))
    assert main(["export", str(FIXTURES / "layers/torch_layers.keras"), "-o", str(out), "--skip-inexact"]) == 2
    assert "--skip-inexact only applies to --to pytorch" in capsys.readouterr().err


def test_safetensors_file_loads_into_real_torch(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    out = tmp_path / "bi.safetensors"
    assert main(["export", str(K3 / "functional.h5"), "--to", "pytorch", "--layer", "bi_g", "-o", str(out)]) == 0
    assert unwrapped(capsys.readouterr().out).splitlines()[0] == f"bi_g: {BI_G}"
    gru = torch.nn.GRU(input_size=5, hidden_size=3, bias=True, batch_first=True, bidirectional=True)  # as printed
    gru.load_state_dict({k.removeprefix("bi_g."): v for k, v in load_file(out).items()})
    arrays = truth_arrays("functional")
    with torch.no_grad():
        got, _ = gru(torch.from_numpy(arrays["bi_g/input"]))
    np.testing.assert_allclose(got.numpy(), arrays["bi_g/sequences"], atol=1e-5, rtol=0)


def console_blocks() -> list[tuple[str, str]]:
    """(command, printed text) pairs of the ``$ kerasweights ...`` blocks in docs/pytorch.md."""
    text = (FIXTURES.parent / "docs" / "pytorch.md").read_text()
    blocks = re.findall(r"```console\n(.*?)```", text, re.DOTALL)
    pairs = []
    for block in blocks:
        lines = [line.removeprefix("   ") for line in block.rstrip().splitlines()]
        pairs.append((lines[0].removeprefix("$ "), "".join(line + "\n" for line in lines[1:])))
    return pairs


@pytest.mark.parametrize("index", [0, 1], ids=["skip-inexact", "refused"])
def test_pytorch_doc_console_output_is_real(tmp_path, monkeypatch, capsys, index):
    pytest.importorskip("safetensors")
    command, expected = console_blocks()[index]
    (tmp_path / "fixtures").symlink_to(FIXTURES)
    monkeypatch.chdir(tmp_path)
    code = main(command.split()[1:])
    assert code == (0 if index == 0 else 2)
    captured = capsys.readouterr()
    assert captured.out + captured.err == expected
