"""The seed generator: checkpoint layout, parameter count, architecture inference, math."""

from __future__ import annotations

import numpy as np
import pytest

from evalkit.core.tf import tf
from evalkit.inputs.checkpoints.load import (
    CheckpointError,
    expected_variables,
    infer_architecture,
    read_generator_weights,
    read_shapes,
)
from evalkit.inputs.models import resnet_generator
from tests.conftest import shared_path

DOMAINS = ["car", "gemstone", "handbag", "maple_character", "panda", "person", "shoe", "space"]


@pytest.fixture(scope="module")
def full_model():
    return resnet_generator()


def test_parameter_count(full_model):
    assert full_model.count_params() == 11_377_155


@pytest.mark.parametrize("domain", DOMAINS)
def test_layout_matches_real_index_files(domain, full_model, tmp_path):
    real = dict(tf.train.list_variables(str(shared_path("seed", "checkpoints", domain, "ckpt-1.index"))[:-6]))
    saved = tf.train.Checkpoint(generator=full_model).save(str(tmp_path / "ckpt"))
    ours = dict(tf.train.list_variables(saved))
    assert len(real) == 73
    assert ours == real


def test_expected_variables_cover_every_generator_key(full_model, tmp_path):
    saved = tf.train.Checkpoint(generator=full_model).save(str(tmp_path / "ckpt"))
    keys = {k for k, _ in tf.train.list_variables(saved) if k.startswith("generator/")}
    assert set(expected_variables(full_model)) == keys
    assert len(keys) == 71


def test_architecture_inferred_from_real_index():
    arch = infer_architecture(read_shapes(str(shared_path("seed", "checkpoints", "car", "ckpt-1.index"))[:-6]))
    assert (arch.input_channels, arch.hidden_channels, arch.output_channels) == (1, 64, 3)


@pytest.mark.parametrize("in_ch,hidden", [(1, 4), (4, 8)])
def test_architecture_inferred_for_narrow_and_hint_models(tmp_path, in_ch, hidden):
    model = resnet_generator(input_channels=in_ch, hidden_channels=hidden)
    prefix = tf.train.Checkpoint(generator=model).save(str(tmp_path / "ckpt"))
    arch = infer_architecture(read_shapes(prefix))
    assert (arch.input_channels, arch.hidden_channels, arch.output_channels) == (in_ch, hidden, 3)
    clone = resnet_generator(arch.input_channels, arch.output_channels, arch.hidden_channels)
    values = read_generator_weights(prefix, clone)
    assert len(values) == 71


def test_wrong_root_object_is_a_clear_error(tmp_path):
    model = resnet_generator(hidden_channels=4)
    prefix = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    with pytest.raises(CheckpointError, match="tf.train.Checkpoint\\(generator=model\\)"):
        infer_architecture(read_shapes(prefix))


def test_forward_matches_independent_implementation(tmp_path):
    """Weights written by independent seed-like code give the same outputs in evalkit."""
    from evalkit.inputs.checkpoints.load import assign_weights
    from tests.seed_reference import save_seed_checkpoint

    gens = save_seed_checkpoint(tmp_path, n=1, hidden=4)
    prefix = tf.train.latest_checkpoint(str(tmp_path))
    model = resnet_generator(hidden_channels=4)
    assign_weights(model, read_generator_weights(prefix, model))
    x = np.random.default_rng(1).random((2, 32, 32, 1)).astype(np.float32)
    ours = model(x).numpy()
    ref = gens[0](x).numpy()
    assert np.abs(ours - ref).max() < 1e-5
    assert ours.min() >= -1 and ours.max() <= 1


def test_instance_norm_uses_tfa_epsilon():
    from evalkit.inputs.models import InstanceNormalization

    layer = InstanceNormalization()
    x = np.random.default_rng(0).normal(3, 0.01, (1, 8, 8, 2)).astype(np.float32)
    y = layer(x).numpy()
    m, v = x.mean(axis=(1, 2), keepdims=True), x.var(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(y, (x - m) / np.sqrt(v + 1e-3), atol=1e-5)
