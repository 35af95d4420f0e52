"""Untrusted Keras, SavedModel and ONNX files cannot run code or touch files (issue 26).

Every hostile model writes a marker file when its code runs; without --trust-model-code
the marker must never appear, and with it the model does run (so the payload is real).
"""

from __future__ import annotations

import sqlite3
import zipfile

import pytest
from click.testing import CliRunner

import evalkit  # noqa: F401
from evalkit.cli import cli
from evalkit.inputs.checkpoints.load import CheckpointError
from evalkit.inputs.sources import SourceOptions, discover, safety
from tests import hostile_models as hm
from tests.conftest import make_ab_folder

SIZE = 32


def run_cli(run, tmp_path, *extra):
    heldout = tmp_path / "heldout"
    if not heldout.exists():
        make_ab_folder(heldout, n=2)
    args = ["run", str(run), "--heldout", str(heldout), "--out", str(tmp_path / "out"),
            "--image-size", str(SIZE), "--no-report", "--quiet", *extra]
    return CliRunner().invoke(cli, args, catch_exceptions=False)


KERAS_CASES = {  # name in the run folder, saved format, container evalkit must detect
    "h5": ("evil-1.h5", "h5", "HDF5"),
    "keras-named-hdf5": ("evil-1.keras", "h5", "HDF5"),
    "zip-keras": ("evil-1.keras", "keras", "zip"),
}


@pytest.mark.parametrize("case", KERAS_CASES)
def test_keras_lambda_is_refused_by_run_and_never_runs(tmp_path, case):
    name, fmt, container = KERAS_CASES[case]
    marker = tmp_path / "marker.txt"
    path = hm.lambda_keras(tmp_path / "run", name, marker, fmt)
    magic = path.read_bytes()[:8]
    assert magic.startswith(safety.ZIP_MAGIC if container == "zip" else safety.HDF5_MAGIC)
    r = run_cli(tmp_path / "run", tmp_path)
    assert r.exit_code == 1, r.output
    assert f"failed {name}: refused {name}: layer 'payload' is a Lambda layer" in r.output
    assert "--trust-model-code" in r.output and "Re-save" in r.output
    assert "0 of 1 checkpoints evaluated" in r.output
    assert not marker.exists()


@pytest.mark.parametrize("case", KERAS_CASES)
def test_trust_model_code_loads_the_lambda_and_is_recorded(tmp_path, case):
    name, fmt, _ = KERAS_CASES[case]
    marker = tmp_path / "marker.txt"
    hm.lambda_keras(tmp_path / "run", name, marker, fmt)
    r = run_cli(tmp_path / "run", tmp_path, "--trust-model-code")
    assert r.exit_code == 0, r.output
    assert marker.exists()  # the payload is real: trusting it runs it
    df = evalkit.load_results(tmp_path / "out")
    assert set(df.checkpoint) == {name}
    (trusted,) = discover(tmp_path / "run", options=SourceOptions(trust_model_code=True))
    (checked,) = discover(tmp_path / "run")
    assert trusted.settings == {"trust-model-code": "yes"} and checked.settings == {}
    assert trusted.content_hash() != checked.content_hash()
    assert set(df.checkpoint_hash) == {trusted.content_hash()}
    from evalkit.present.deploy import _matches  # select --export accepts the trusted hash

    assert _matches(trusted.files_hash(), trusted.content_hash())
    assert not _matches(trusted.files_hash(), "0" * 64)
    with sqlite3.connect(tmp_path / "out" / "results.sqlite") as db:
        (arch,), = db.execute("SELECT architecture FROM checkpoints").fetchall()
    assert "trusted model code (--trust-model-code, not checked)" in arch


def test_container_is_told_by_bytes_not_name(tmp_path):
    marker = tmp_path / "marker.txt"
    zipped = hm.lambda_keras(tmp_path / "run", "evil.h5", marker, "keras")  # zip named .h5
    assert safety.keras_container(zipped) == ["zip"]
    with pytest.raises(CheckpointError, match="refused evil.h5: layer 'payload' is a Lambda"):
        safety.check_keras_file(zipped)
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"\0" * 64)
    with pytest.raises(CheckpointError, match="junk.keras: it is neither a zip"):
        safety.check_keras_file(junk)
    assert not marker.exists()


def _config(*layers):
    return {"class_name": "Functional", "config": {"name": "m", "layers": [
        {"class_name": cls, "config": {"name": f"l{i}", **cfg}, **extra}
        for i, (cls, cfg, extra) in enumerate(layers)]}}


def test_keras_config_rules():
    ok = _config(("InputLayer", {}, {}), ("Conv2D", {}, {"module": "keras.layers"}),
                 ("InstanceNormalization", {}, {"module": "evalkit.inputs.models.resnet"}),
                 ("TFOpLambda", {"function": "math.multiply"}, {}),
                 ("TFOpLambda", {"function": "__operators__.add"}, {}))
    safety.check_keras_config(ok, "ok.h5")  # what a functional seed-style export holds
    safety.check_keras_config(_config(("StringLookup", {"vocabulary": ["a", "b"]}, {})),
                              "listed.keras")  # a vocabulary given inline reads no file
    bad = {
        "custom layer class 'Evil'": ("Evil", {}, {}),
        r"calls tf.io.write_file": ("TFOpLambda", {"function": "io.write_file"}, {}),
        "comes from module 'os'": ("Conv2D", {}, {"module": "os"}),
        "is a Lambda layer": ("Lambda", {"function": ["AAAA", None, None]}, {}),
        "is a TFSMLayer layer": ("TFSMLayer", {"filepath": "/elsewhere"}, {}),
        "is a TorchModuleWrapper": ("TorchModuleWrapper", {}, {"module": "keras.layers"}),
        r"reads the file '/etc/passwd' \(vocabulary\)": ("StringLookup",
                                                          {"vocabulary": "/etc/passwd"}, {}),
    }
    for message, layer in bad.items():
        with pytest.raises(CheckpointError, match=f"refused m.h5: layer 'l1' .*{message}"):
            safety.check_keras_config(_config(("InputLayer", {}, {}), layer), "m.h5")
    nested = _config(("Functional", {"layers": [{"class_name": "Lambda",
                                                 "config": {"name": "inner"}}]}, {}))
    with pytest.raises(CheckpointError, match="layer 'inner' is a Lambda"):
        safety.check_keras_config(nested, "n.keras")


# --- SavedModel ---------------------------------------------------------------------------

def test_savedmodel_writing_a_file_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "marker.txt"
    run = tmp_path / "run"
    hm.saved_model(run / "export-1", marker)
    hm.saved_model(run / "export-2")
    assert not marker.exists()
    r = run_cli(run, tmp_path)
    assert r.exit_code == 1, r.output
    assert "failed export-1: refused export-1: its function __inference_serve" in r.output
    assert "uses the op WriteFile" in r.output and "--trust-model-code" in r.output
    assert "1 of 2 checkpoints evaluated" in r.output  # the normal SavedModel evaluates
    assert not marker.exists()
    # control: trusted, the same file does write the marker
    r = run_cli(run, tmp_path, "--trust-model-code")
    assert r.exit_code == 0, r.output
    assert marker.read_text() == "ran"


def _file_ops(folder):
    return {(op, role) for op, _, role in safety.saved_model_ops(folder)
            if safety.is_file_op(op)}


def test_savedmodel_saver_ops_are_allowed_only_in_its_own_saver(tmp_path):
    ok = hm.saved_model(tmp_path / "ok")
    # measured on tf 2.21: the variables' save and restore functions hold these, and only
    # they hold file ops
    assert _file_ops(ok) == {("SaveV2", "save"), ("MergeV2Checkpoints", "save"),
                             ("ShardedFilename", "save"), ("RestoreV2", "restore")}
    safety.check_saved_model(ok)
    bad = hm.saved_model(tmp_path / "bad", raw_save=True)
    with pytest.raises(CheckpointError, match="function __inference_serve.*op SaveV2"):
        safety.check_saved_model(bad)


def test_tf1_savedmodel_saver_nodes_are_allowed_and_a_writing_restore_is_not(tmp_path):
    ok = hm.tf1_saved_model(tmp_path / "tf1")
    assert _file_ops(ok) == {("SaveV2", "save"), ("MergeV2Checkpoints", "save"),
                             ("ShardedFilename", "save"), ("RestoreV2", "restore")}
    safety.check_saved_model(ok)
    marker = tmp_path / "marker.txt"
    bad = hm.tf1_saved_model(tmp_path / "tf1-bad", restore_writes=marker)
    assert ("WriteFile", "restore") in _file_ops(bad)
    with pytest.raises(CheckpointError, match="graph node .* uses the op WriteFile"):
        safety.check_saved_model(bad)
    assert not marker.exists()


# --- ONNX ---------------------------------------------------------------------------------

def test_onnx_custom_domain_is_refused(tmp_path):
    pytest.importorskip("onnxruntime")
    run = tmp_path / "run"
    run.mkdir()
    hm.onnx_model(run / "gen-1.onnx", "")
    hm.onnx_model(run / "gen-2.onnx", "com.evil")
    safety.check_onnx(run / "gen-1.onnx")
    r = run_cli(run, tmp_path)
    assert r.exit_code == 1, r.output
    assert ("failed gen-2.onnx: refused gen-2.onnx: node 'gen' is the op Tanh of the custom "
            "domain 'com.evil'") in r.output
    assert "1 of 2 checkpoints evaluated" in r.output


def test_onnx_custom_domain_inside_a_subgraph_is_refused(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    def branch(domain):
        return helper.make_graph(
            [helper.make_node("Tanh", ["x"], ["b"], domain=domain, name=f"in-{domain or 'std'}")],
            "branch", [], [helper.make_tensor_value_info("b", TensorProto.FLOAT, None)])

    cond = helper.make_node("If", ["c"], ["y"], then_branch=branch("com.evil"),
                            else_branch=branch(""))
    graph = helper.make_graph(
        [cond], "g", [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                      helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    path = tmp_path / "if.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(CheckpointError, match="node 'in-com.evil' .*custom domain 'com.evil'"):
        safety.check_onnx(path)


def test_a_file_both_hdf5_and_zip_is_checked_both_ways(tmp_path):
    """A polyglot: a harmless HDF5 model config, with a zip whose config.json holds a Lambda
    appended (a loader that trusts the zip view would read that one)."""
    import io
    import json

    import h5py

    path = tmp_path / "both.keras"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(_config(("InputLayer", {}, {})))
    safety.check_keras_file(path)  # harmless alone
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("config.json", json.dumps(_config(("Lambda", {}, {}))))
    with open(path, "ab") as f:
        f.write(buf.getvalue())
    assert safety.keras_container(path) == ["zip", "hdf5"]
    with pytest.raises(CheckpointError, match="refused both.keras: layer 'l0' is a Lambda"):
        safety.check_keras_file(path)


def test_keras_zip_config_is_read_without_loading(tmp_path):
    """The zip view is read from config.json alone (no weights needed to refuse)."""
    path = tmp_path / "m.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", '{"class_name": "Functional", "config": {"layers": '
                                  '[{"class_name": "Lambda", "config": {"name": "x"}}]}}')
    with pytest.raises(CheckpointError, match="layer 'x' is a Lambda"):
        safety.check_keras_file(path)


def test_keras_config_nested_too_deeply_is_refused_not_a_traceback(tmp_path):
    path = tmp_path / "deep.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match="refused deep.keras: .*nested too deeply"):
        safety.check_keras_file(path)
    shallow = tmp_path / "shallow.keras"
    with zipfile.ZipFile(shallow, "w") as z:  # json parses it; the walk must not overflow
        z.writestr("config.json", '{"a": ' * 900 + "1" + "}" * 900)
    safety.check_keras_file(shallow)
