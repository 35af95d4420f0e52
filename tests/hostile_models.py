"""Hostile model files for tests/test_model_safety.py and benchmarks/faults.py: each one's
code writes a marker file when it runs (evalkit must never let it).

``python -m tests.hostile_models KIND DEST MARKER`` writes one (KIND: h5, keras-hdf5,
keras-zip, savedmodel-write, onnx-custom).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def lambda_model(marker):
    """A functional tf-keras model whose Lambda layer writes ``marker`` when it runs."""
    from evalkit.core.tf import tf_keras

    payload = eval(f"lambda t: (open({str(marker)!r}, 'a').write('ran'), t)[1]")  # noqa: S307
    x = tf_keras.Input((None, None, 1))
    y = tf_keras.layers.Conv2D(3, 3, padding="same", activation="tanh")(x)
    y = tf_keras.layers.Lambda(payload, name="payload")(y)
    return tf_keras.Model(x, y)


def lambda_keras(run, name, marker, fmt):
    """``run/name`` holding a Lambda model saved as ``fmt`` (``h5`` or ``keras``, zip)."""
    run.mkdir(parents=True, exist_ok=True)
    model = lambda_model(marker)  # building it calls the lambda once
    src = run.parent / f"src-{name}.{fmt}"
    model.save(src)
    marker.unlink(missing_ok=True)
    shutil.move(src, run / name)
    return run / name


def saved_model(path, marker=None, raw_save=False):
    """A SavedModel whose serving function is tanh(x * w); with ``marker`` it also writes
    that file (tf.io.write_file); with ``raw_save`` it also calls SaveV2 beside ``path``."""
    from evalkit.core.tf import tf

    class Gen(tf.Module):
        def __init__(self):
            self.w = tf.Variable(tf.ones([1, 1, 1, 3]))

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32)])
        def serve(self, x):
            if marker is not None:
                tf.io.write_file(str(marker), "ran")
            if raw_save:
                tf.raw_ops.SaveV2(prefix=str(path.parent / "stolen"), tensor_names=["w"],
                                  shape_and_slices=[""], tensors=[self.w.read_value()])
            return {"out": tf.tanh(x * self.w)}

    gen = Gen()
    tf.saved_model.save(gen, str(path), signatures={"serving_default": gen.serve})
    return path


def tf1_saved_model(path, restore_writes=None):
    """A TF1-style SavedModel (Builder): its saver is save/* graph nodes, no functions.
    ``restore_writes``: the restore op also writes that file."""
    from evalkit.core.tf import tf

    v1 = tf.compat.v1
    with tf.Graph().as_default(), v1.Session() as sess:
        x = v1.placeholder(tf.float32, [None, None, None, 1], name="x")
        w = v1.get_variable("w", [1, 1, 1, 3], initializer=v1.ones_initializer())
        y = tf.tanh(x * w, name="y")
        saver = None
        if restore_writes is not None:
            saver = v1.train.Saver()
            restore = sess.graph.get_operation_by_name(saver.saver_def.restore_op_name)
            with tf.control_dependencies([restore]):
                evil = tf.group(tf.io.write_file(str(restore_writes), "ran"), name="evil")
            saver.saver_def.restore_op_name = evil.name
        sess.run(v1.global_variables_initializer())
        b = v1.saved_model.Builder(str(path))
        sig = v1.saved_model.predict_signature_def({"x": x}, {"y": y})
        b.add_meta_graph_and_variables(sess, ["serve"], saver=saver,
                                       signature_def_map={"serving_default": sig})
        b.save()
    return path


def onnx_model(path, domain, size=32):
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Tanh", ["x"], ["y"], domain=domain, name="gen")
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1, size, size])])
    opsets = [helper.make_opsetid("", 17)]
    if domain:
        opsets.append(helper.make_opsetid(domain, 1))
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(path))
    return path


def onnx_custom_domain(path, marker=None):
    """An ONNX model whose one node is in the custom domain ``com.evil`` (``marker``
    unused: onnxruntime has no code of it to run)."""
    return onnx_model(path, "com.evil")


#: KIND -> (file or folder name in a run folder, writer(dest, marker))
KINDS = {
    "h5": ("evil-1.h5", lambda d, m: lambda_keras(d.parent, d.name, m, "h5")),
    "keras-hdf5": ("evil-1.keras", lambda d, m: lambda_keras(d.parent, d.name, m, "h5")),
    "keras-zip": ("evil-1.keras", lambda d, m: lambda_keras(d.parent, d.name, m, "keras")),
    "savedmodel-write": ("export-1", lambda d, m: saved_model(d, m)),
    "onnx-custom": ("evil-1.onnx", lambda d, m: onnx_custom_domain(d, m)),
}


if __name__ == "__main__":
    kind, dest, marker = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    KINDS[kind][1](dest, marker)
