"""evalkit.keras.EvaluateCheckpoints: a tiny seed generator trained for two epochs saves
ckpt-1 and ckpt-2 in the seed layout and evaluates each into OUT (inline and in the
background), the same results `evalkit run` stores."""

from __future__ import annotations

import numpy as np
import pytest

import evalkit
from tests.conftest import make_ab_folder

SIZE = 32


def _fit(tmp_path, **kw):
    from evalkit.core.tf import tf, tf_keras
    from evalkit.inputs.models import resnet_generator
    from evalkit.keras import EvaluateCheckpoints

    heldout = make_ab_folder(tmp_path / "heldout", n=4)
    g = resnet_generator(1, 3, 4)
    g.compile(optimizer=tf_keras.optimizers.Adam(1e-3), loss="mae")
    rng = np.random.default_rng(0)
    x = rng.random((8, SIZE, SIZE, 1)).astype("float32")
    y = (rng.random((8, SIZE, SIZE, 3)) * 2 - 1).astype("float32")
    cb = EvaluateCheckpoints(tmp_path / "run", tmp_path / "out", heldout=heldout,
                             image_size=SIZE, no_report=True, **kw)
    g.fit(tf.constant(x), tf.constant(y), epochs=2, batch_size=4, verbose=0, callbacks=[cb])
    return cb


@pytest.mark.parametrize("background", [False, True])
def test_two_epochs_two_checkpoints_evaluated(tmp_path, background):
    cb = _fit(tmp_path, background=background)
    run = tmp_path / "run"
    assert sorted(p.name for p in run.glob("ckpt-*.index")) == ["ckpt-1.index", "ckpt-2.index"]
    assert 'model_checkpoint_path: "ckpt-2"' in (run / "checkpoint").read_text()
    assert cb.evaluated == [1, 2]
    df = evalkit.results(tmp_path / "out")
    assert set(df.checkpoint) == {"ckpt-1", "ckpt-2"}
    l1 = df[df.metric == "l1"].set_index("checkpoint")["value"]
    assert np.isfinite(l1).all() and l1["ckpt-1"] != l1["ckpt-2"]


def test_every_must_be_positive(tmp_path):
    from evalkit.keras import EvaluateCheckpoints

    with pytest.raises(ValueError, match="every must be >= 1"):
        EvaluateCheckpoints(tmp_path / "run", tmp_path / "out", every=0)
