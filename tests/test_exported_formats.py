"""Keras files, SavedModel folders and ONNX files evaluated as checkpoints, each checked
against the model's own forward pass; mixed kinds in one run folder."""

from __future__ import annotations

import numpy as np
import pytest

import evalkit  # noqa: F401
from evalkit.execute.engine import RunOptions, evaluate_run
from evalkit.execute.generate import OutputCache
from evalkit.inputs.data.pairs import load_pairs
from evalkit.inputs.data.serving import output_to_uint8
from evalkit.inputs.sources import discover
from evalkit.measure.paired import PairedMetrics
from tests.conftest import make_ab_folder

SIZE = 32


def _evaluate(run, tmp_path, **opts):
    ds = load_pairs(make_ab_folder(tmp_path / "heldout", n=5), size=SIZE)
    out = tmp_path / "out"
    summary = evaluate_run(run, out, [ds], RunOptions(image_size=SIZE, progress=False, **opts),
                           families=[PairedMetrics()])
    refs = {r.name: r for r in discover(run, exclude=[out], options=RunOptions(**opts))}
    cache = OutputCache(out)
    return ds, summary, {n: cache.load(r.content_hash(), ds) for n, r in refs.items()}


def _tiny_keras(tf_keras, seed=0):
    tf_keras.utils.set_random_seed(seed)
    x = tf_keras.Input((None, None, 1))
    y = tf_keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    y = tf_keras.layers.Conv2D(3, 3, padding="same", activation="tanh")(y)
    return tf_keras.Model(x, y)


def test_keras_files_and_weights_only_file(tmp_path):
    from evalkit.core.tf import tf_keras

    run = tmp_path / "run"
    run.mkdir()
    models = {"gen-3.h5": _tiny_keras(tf_keras, 3), "gen-7.keras": _tiny_keras(tf_keras, 7)}
    for name, m in models.items():
        m.save(run / name)
    models["gen-7.keras"].save_weights(run / "gen-9.weights.h5")
    ds, summary, cached = _evaluate(run, tmp_path)
    assert [(c.name, c.step) for c in summary.checkpoints] == [
        ("gen-3.h5", 3), ("gen-7.keras", 7), ("gen-9.weights.h5", 9)]
    assert "holds weights only" in summary.checkpoints[2].error
    for name, m in models.items():
        served, _ = cached[name]
        assert np.array_equal(served, output_to_uint8(m(ds.inputs).numpy())), name


def test_keras3_file(tmp_path):
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(1)
    x = keras.Input((None, None, 1))
    m = keras.Model(x, keras.layers.Conv2D(3, 3, padding="same", activation="tanh")(x))
    run = tmp_path / "run"
    run.mkdir()
    m.save(run / "k3-2.keras")
    ds, summary, cached = _evaluate(run, tmp_path)
    assert summary.exit_code == 0, summary.checkpoints[0].error
    assert np.array_equal(cached["k3-2.keras"][0], output_to_uint8(np.asarray(m(ds.inputs))))


def test_savedmodel_of_the_seed_generator_matches_its_checkpoint(tmp_path):
    from evalkit.core.tf import tf
    from evalkit.inputs.models import resnet_generator

    model = resnet_generator(1, 3, 4)
    rng = np.random.default_rng(0)
    for w in model.weights:
        w.assign(rng.normal(0, 0.1, w.shape).astype(np.float32))
    run = tmp_path / "run"
    tf.train.Checkpoint(generator=model).save(str(run / "ckpt"))
    spec = tf.TensorSpec((None, None, None, 1), tf.float32)
    fn = tf.function(lambda x: model(x, training=False))
    tf.saved_model.save(model, str(run / "export-1"),
                        signatures={"serving_default": fn.get_concrete_function(spec)})
    ds, summary, cached = _evaluate(run, tmp_path)
    assert {c.name: c.status for c in summary.checkpoints} == {"ckpt-1": "evaluated",
                                                              "export-1": "evaluated"}
    (a, l1a), (b, l1b) = cached["ckpt-1"], cached["export-1"]
    assert np.allclose(l1a, l1b, atol=1e-5)
    assert np.mean(a == b) > 0.999 and np.abs(a.astype(int) - b).max() <= 1


def test_onnx_export_of_a_pix2pix_generator_matches_its_pth(tmp_path):
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    pytest.importorskip("onnx", reason="torch.onnx.export needs the onnx package")
    import torch

    from evalkit.inputs.checkpoints.torch_state import infer_architecture
    from evalkit.inputs.models.pix2pix import build_generator
    from tests import pix2pix_reference as ref

    state = ref.resnet_state(ngf=2, n_blocks=6, norm="instance")
    run = ref.save_run(tmp_path / "run", {"1_net_G.pth": state})
    net = build_generator(infer_architecture(state))
    net.load_state_dict(state)
    torch.onnx.export(net, (torch.zeros(1, 3, SIZE, SIZE),), str(run / "g-1.onnx"),
                      dynamo=False, input_names=["x"], dynamic_axes={"x": {0: "n"}})
    ds, summary, cached = _evaluate(run, tmp_path)
    assert summary.exit_code == 0, [c.error for c in summary.checkpoints]
    (a, l1a), (b, l1b) = cached["1_net_G.pth"], cached["g-1.onnx"]
    assert np.allclose(l1a, l1b, atol=1e-5)
    assert np.mean(a == b) > 0.999 and np.abs(a.astype(int) - b).max() <= 1
    from evalkit.store.results import Store
    with Store(tmp_path / "out", create=False) as st:
        arch = st.checkpoints().set_index("name").loc["g-1.onnx", "architecture"]
    assert arch == "ONNX model NCHW in=3; contract pix2pix-torch (from the NCHW input)"


def test_onnx_without_onnxruntime_fails_that_checkpoint_only(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    run = tmp_path / "run"
    run.mkdir()
    (run / "g-1.onnx").write_bytes(b"not really onnx")
    _, summary, _ = _evaluate(run, tmp_path)
    assert "pip install 'evalkit[onnx]'" in summary.failed[0].error


def test_seed_checkpoint_under_the_pix2pix_contract(tmp_path):
    """--contract on a TF checkpoint: the seed model is fed (x - 0.5) / 0.5, and the
    outputs are cached under a different content hash than the default contract's."""
    from tests.seed_reference import save_seed_checkpoint

    run = tmp_path / "run"
    run.mkdir()
    (gen,) = save_seed_checkpoint(run, n=1, hidden=4)
    ds, summary, cached = _evaluate(run, tmp_path, contract="pix2pix-torch")
    assert summary.exit_code == 0, summary.checkpoints[0].error
    served, _ = cached["ckpt-1"]
    # the independent TF reference differs from evalkit's model by float rounding only
    want = output_to_uint8(gen((ds.inputs - 0.5) / 0.5).numpy())
    assert np.mean(served == want) > 0.999 and np.abs(served.astype(int) - want).max() <= 1
    unsigned = output_to_uint8(gen(ds.inputs).numpy())
    assert np.mean(served == unsigned) < 0.5
    (default,) = discover(run)
    (other,) = discover(run, options=RunOptions(contract="pix2pix-torch"))
    assert default.content_hash() != other.content_hash()
