"""The seed-recipe trainer: PatchGAN shapes, one step that changes weights, checkpoints in
the seed's layout that evalkit's loader reads back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.example.train import Pix2PixTrainer, TrainConfig, patchgan_discriminator, train
from evalkit.core.tf import tf


def tiny_config(**kw) -> TrainConfig:
    # eager: tracing the step costs ~15 s on 2 cores, longer than the tiny steps themselves
    base = dict(image_size=32, hidden_channels=4, disc_channels=8, epochs=1, batch_size=4,
                seed=0, eager=True)
    base.update(kw)
    return TrainConfig(**base)


def test_patchgan_shapes():
    d = patchgan_discriminator(4, 8)
    assert d(tf.zeros((2, 64, 64, 4))).shape == (2, 6, 6, 1)
    assert d(tf.zeros((1, 256, 256, 4))).shape == (1, 30, 30, 1)   # pix2pix's 30x30 patches


def test_one_training_step_changes_both_networks():
    trainer = Pix2PixTrainer(tiny_config())
    rng = np.random.default_rng(0)
    x = rng.random((4, 32, 32, 1), dtype=np.float32)
    y = rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    g0 = [v.numpy().copy() for v in trainer.generator.trainable_variables]
    d0 = [v.numpy().copy() for v in trainer.discriminator.trainable_variables]
    losses = trainer.train_step(x, y)
    assert all(np.isfinite(v) for v in losses.values())
    assert 0.0 < losses["g_l1"] < 2.0
    g_changed = [not np.array_equal(a, v.numpy())
                 for a, v in zip(g0, trainer.generator.trainable_variables, strict=True)]
    d_changed = [not np.array_equal(a, v.numpy())
                 for a, v in zip(d0, trainer.discriminator.trainable_variables, strict=True)]
    assert all(g_changed) and all(d_changed)


def make_pairs(folder, n=8, size=32):
    from benchmarks.example.faces import render_face
    from evalkit.inputs.edges import detect_edges, make_ab

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        photo = render_face(i, size)
        make_ab(photo, detect_edges(photo)[0]).save(folder / f"f{i}.png")
    return folder


def test_train_writes_loadable_checkpoints_in_the_seed_layout(tmp_path):
    from evalkit.inputs.checkpoints.discover import discover_checkpoints
    from evalkit.inputs.checkpoints.load import (
        infer_architecture,
        read_generator_weights,
        read_shapes,
    )
    from evalkit.inputs.models.resnet import resnet_generator

    data = make_pairs(tmp_path / "train")
    run = tmp_path / "run"
    result = train(data, run, tiny_config(epochs=2), log=None)
    assert (run / "checkpoint").is_file()
    for n in (1, 2):
        assert (run / f"ckpt-{n}.index").is_file()
        assert (run / f"ckpt-{n}.data-00000-of-00001").is_file()
    assert [c.name for c in discover_checkpoints(run)] == ["ckpt-1", "ckpt-2"]
    state = (run / "checkpoint").read_text()
    assert 'model_checkpoint_path: "ckpt-2"' in state
    shapes = read_shapes(run / "ckpt-2")
    assert len(shapes) == 73    # 71 weights, save_counter, the object graph: the seed's count
    arch = infer_architecture(shapes)
    assert arch.hidden_channels == 4
    g = resnet_generator(1, 3, 4)
    values = read_generator_weights(run / "ckpt-2", g)
    assert len(values) == 71
    from evalkit.inputs.checkpoints.load import expected_variables
    trained = expected_variables(result.generator)
    assert all(np.array_equal(values[k], v.numpy()) for k, v in trained.items())
    # the last checkpoint holds the trained weights (some of them differ from epoch 1)
    v1 = read_generator_weights(run / "ckpt-1", resnet_generator(1, 3, 4))
    assert any(not np.array_equal(values[k], v1[k]) for k in values)
    log = json.loads((run / "train_log.json").read_text())
    assert [e["epoch"] for e in log["epochs"]] == [1, 2]
    assert log["train_pairs"] == 8
    with pytest.raises(FileExistsError):
        train(data, run, tiny_config(), log=None)
