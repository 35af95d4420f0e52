"""A small pix2pix trainer that follows the seed's recipe (DESIGN.md, "Training recipe").

- generator: the seed's ResNet generator (:func:`evalkit.inputs.models.resnet.resnet_generator`),
  input the edge image ``(N, S, S, 1)`` in [0, 1] (white = 1), output RGB in [-1, 1];
- discriminator: the 70x70 PatchGAN of pix2pix (C64-C128-C256-C512, 4x4 convolutions,
  stride 2, 2, 2, 1, then a 4x4 convolution to one channel; LeakyReLU 0.2; instance norm on
  all but the first layer) on the 4-channel concatenation (condition, image);
- losses: LSGAN. D: ``0.5 * (mean((D(x, y) - 1)^2) + mean(D(x, G(x))^2))``;
  G: ``mean((D(x, G(x)) - 1)^2) + 10 * mean(|G(x) - y|)`` (L1 on the [-1, 1] scale);
- one D step then one G step per batch, Adam(2e-4, beta1 0.5) each, batch 4;
- after every epoch, ``tf.train.Checkpoint(generator=G)`` is saved into the run folder in
  the seed's layout (``checkpoint`` state file, ``ckpt-N.index``,
  ``ckpt-N.data-00000-of-00001``; N = epoch), and the epoch's mean losses are appended to
  ``train_log.json`` beside them.

Training pairs are read with :func:`evalkit.inputs.data.pairs.load_pairs`, i.e. through the very
serving contract evaluation uses. Widths and image size are configurable; the shipped
example (``benchmarks/make_example.py``) trains width-12 generators on 64 px images.

Example-making code, not part of the evalkit package. From the repository root:
``python -m benchmarks.example.train TRAIN_DIR RUN_DIR --image-size 64 --hidden-channels 12``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from evalkit.core.tf import tf, tf_keras
from evalkit.inputs.data.serving import uint8_to_signed
from evalkit.inputs.models.resnet import InstanceNormalization, resnet_generator


@dataclass
class TrainConfig:
    """Training settings; defaults are the seed's recipe except widths and image size."""

    image_size: int = 64          # pixels, multiple of 4
    hidden_channels: int = 16     # generator width (the seed: 64)
    disc_channels: int = 64       # PatchGAN width of its first layer (pix2pix: 64)
    epochs: int = 6
    batch_size: int = 4
    learning_rate: float = 2e-4
    beta1: float = 0.5
    l1_weight: float = 10.0
    flip: bool = True             # random horizontal flips of (edge, photo) pairs
    seed: int = 0
    limit: int | None = None      # use only the first N training pairs
    eager: bool = False           # skip tf.function (no ~15 s tracing; slower steps): tests


@dataclass
class EpochLog:
    epoch: int
    d_loss: float
    g_gan: float
    g_l1: float        # mean |G(x) - y| on the [-1, 1] scale, training batches
    seconds: float
    checkpoint: str


@dataclass
class TrainResult:
    run_dir: Path
    config: TrainConfig
    epochs: list[EpochLog] = field(default_factory=list)
    generator: object = None   # the trained generator (tf-keras model)


def patchgan_discriminator(input_channels: int = 4, base_channels: int = 64) -> tf_keras.Model:
    """pix2pix's 70x70 PatchGAN: ``(N, H, W, input_channels)`` -> ``(N, H/8 - 2, W/8 - 2, 1)``
    raw scores (no sigmoid: LSGAN). Each output sees a 70x70 input patch."""
    def conv_init():  # a fresh initializer per layer (a reused unseeded one repeats values)
        return tf_keras.initializers.RandomNormal(0.0, 0.02)

    inp = tf_keras.Input((None, None, input_channels))
    x = inp
    for i, (mult, stride) in enumerate([(1, 2), (2, 2), (4, 2), (8, 1)]):
        x = tf_keras.layers.ZeroPadding2D(1)(x)
        x = tf_keras.layers.Conv2D(base_channels * mult, 4, strides=stride, padding="valid",
                                   use_bias=i == 0, kernel_initializer=conv_init())(x)
        if i > 0:
            x = InstanceNormalization()(x)
        x = tf_keras.layers.LeakyReLU(0.2)(x)
    x = tf_keras.layers.ZeroPadding2D(1)(x)
    out = tf_keras.layers.Conv2D(1, 4, strides=1, padding="valid",
                                 kernel_initializer=conv_init())(x)
    return tf_keras.Model(inp, out, name="patchgan")


class Pix2PixTrainer:
    """Holds the two networks and optimizers; :meth:`train_step` is one D + one G update."""

    def __init__(self, config: TrainConfig):
        self.config = config
        tf.random.set_seed(config.seed)
        self.generator = resnet_generator(1, 3, config.hidden_channels)
        self.discriminator = patchgan_discriminator(4, config.disc_channels)
        self.g_opt = tf_keras.optimizers.Adam(config.learning_rate, beta_1=config.beta1)
        self.d_opt = tf_keras.optimizers.Adam(config.learning_rate, beta_1=config.beta1)
        self._step = (self._train_step if config.eager
                      else tf.function(self._train_step, reduce_retracing=True))

    def _train_step(self, x, y):
        l1_weight = self.config.l1_weight
        # D step: real pairs -> 1, fake pairs -> 0 (least squares).
        fake = self.generator(x, training=True)
        with tf.GradientTape() as tape:
            d_real = self.discriminator(tf.concat([x, y], -1), training=True)
            d_fake = self.discriminator(tf.concat([x, fake], -1), training=True)
            d_loss = 0.5 * (tf.reduce_mean(tf.square(d_real - 1.0))
                            + tf.reduce_mean(tf.square(d_fake)))
        grads = tape.gradient(d_loss, self.discriminator.trainable_variables)
        self.d_opt.apply_gradients(zip(grads, self.discriminator.trainable_variables, strict=True))
        # G step against the updated D: fool it (-> 1) and stay close to y in L1.
        with tf.GradientTape() as tape:
            fake = self.generator(x, training=True)
            d_fake = self.discriminator(tf.concat([x, fake], -1), training=True)
            g_gan = tf.reduce_mean(tf.square(d_fake - 1.0))
            g_l1 = tf.reduce_mean(tf.abs(fake - y))
            g_loss = g_gan + l1_weight * g_l1
        grads = tape.gradient(g_loss, self.generator.trainable_variables)
        self.g_opt.apply_gradients(zip(grads, self.generator.trainable_variables, strict=True))
        return d_loss, g_gan, g_l1

    def train_step(self, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """One update. ``x``: ``(B, S, S, 1)`` float32 in [0, 1]; ``y``: ``(B, S, S, 3)``
        float32 in [-1, 1]. Returns the batch's losses (before the G update for ``g_*``)."""
        d_loss, g_gan, g_l1 = self._step(tf.constant(x, tf.float32), tf.constant(y, tf.float32))
        return {"d_loss": float(d_loss), "g_gan": float(g_gan), "g_l1": float(g_l1)}


def load_training_pairs(train_dir: str | Path, image_size: int,
                        limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """AB pairs -> ``(inputs (N, S, S, 1) float32 [0, 1], targets (N, S, S, 3) float32 [-1, 1])``
    through the serving contract."""
    from evalkit.inputs.data.pairs import load_pairs

    ds = load_pairs(train_dir, size=image_size, name="train", limit=limit)
    return ds.inputs.astype(np.float32), uint8_to_signed(ds.targets)


def train(train_dir: str | Path, run_dir: str | Path, config: TrainConfig | None = None,
          log: Callable[[str], None] | None = print) -> TrainResult:
    """Train a generator on the AB pairs in ``train_dir``, checkpointing every epoch into
    ``run_dir`` (created; an existing run there is refused to avoid mixing runs)."""
    config = config or TrainConfig()
    if config.image_size % 4:
        raise ValueError("image_size must be a multiple of 4 (the generator downsamples twice)")
    run_dir = Path(run_dir)
    if run_dir.exists() and any(run_dir.glob("ckpt-*.index")):
        raise FileExistsError(f"{run_dir} already holds checkpoints; use a new run folder")
    run_dir.mkdir(parents=True, exist_ok=True)
    x_all, y_all = load_training_pairs(train_dir, config.image_size, config.limit)
    n = len(x_all)
    if n < config.batch_size:
        raise ValueError(f"{n} training pairs is fewer than one batch of {config.batch_size}")
    trainer = Pix2PixTrainer(config)
    ckpt = tf.train.Checkpoint(generator=trainer.generator)
    manager = tf.train.CheckpointManager(ckpt, str(run_dir), max_to_keep=None,
                                         checkpoint_name="ckpt")
    rng = np.random.default_rng(config.seed)
    result = TrainResult(run_dir=run_dir, config=config, generator=trainer.generator)
    steps = n // config.batch_size
    for epoch in range(1, config.epochs + 1):
        t0 = time.perf_counter()
        order = rng.permutation(n)
        sums = {"d_loss": 0.0, "g_gan": 0.0, "g_l1": 0.0}
        for b in range(steps):
            idx = order[b * config.batch_size:(b + 1) * config.batch_size]
            x, y = x_all[idx], y_all[idx]
            if config.flip:
                flip = rng.random(len(idx)) < 0.5
                x = np.where(flip[:, None, None, None], x[:, :, ::-1], x)
                y = np.where(flip[:, None, None, None], y[:, :, ::-1], y)
            losses = trainer.train_step(x, y)
            for k, v in losses.items():
                sums[k] += v
        path = manager.save(checkpoint_number=epoch)
        entry = EpochLog(epoch=epoch, seconds=round(time.perf_counter() - t0, 2),
                         checkpoint=Path(path).name,
                         **{k: round(v / steps, 5) for k, v in sums.items()})
        result.epochs.append(entry)
        (run_dir / "train_log.json").write_text(json.dumps(
            {"config": asdict(config), "train_pairs": n,
             "epochs": [asdict(e) for e in result.epochs]}, indent=2) + "\n")
        if log is not None:
            log(f"epoch {epoch}/{config.epochs}: D {entry.d_loss:.4f}  G_gan {entry.g_gan:.4f}  "
                f"L1 {entry.g_l1:.4f}  ({entry.seconds:.1f} s) -> {entry.checkpoint}")
    return result


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.example.train TRAIN_DIR RUN_DIR [options]``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.example.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("train_dir")
    parser.add_argument("run_dir")
    defaults = TrainConfig()
    for name, value in asdict(defaults).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        else:
            parser.add_argument(flag, type=type(value) if value is not None else int,
                                default=value)
    args = vars(parser.parse_args(argv))
    train_dir, run_dir = args.pop("train_dir"), args.pop("run_dir")
    train(train_dir, run_dir, TrainConfig(**args))


if __name__ == "__main__":  # pragma: no cover
    main()
