"""An independent implementation of the seed generator and serving contract, for tests.

Written without evalkit's code: plain ``tf.Module`` objects whose attribute names follow
the seed (so ``tf.train.Checkpoint(generator=...)`` writes the seed's keys), forward pass
with ``tf.nn`` ops, and the serving contract re-typed from the seed's utils.py.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf  # noqa: E402
from PIL import Image

import evalkit  # noqa: F401  (import-order safety before TensorFlow)


class _Conv(tf.Module):
    def __init__(self, shape, rng, bias=False, name=None):
        super().__init__(name=name)
        self.kernel = tf.Variable(rng.normal(0, 0.05, shape).astype(np.float32))
        if bias:
            self.bias = tf.Variable(rng.normal(0, 0.05, shape[-1:]).astype(np.float32))


class _Norm(tf.Module):
    def __init__(self, c, rng, name=None):
        super().__init__(name=name)
        self.gamma = tf.Variable((1 + rng.normal(0, 0.1, (c,))).astype(np.float32))
        self.beta = tf.Variable(rng.normal(0, 0.1, (c,)).astype(np.float32))


class _Block(tf.Module):
    def __init__(self, c, rng):
        super().__init__()
        self.conv_1 = _Conv((3, 3, c, c), rng)
        self.instance_norm_1 = _Norm(c, rng)
        self.conv_2 = _Conv((3, 3, c, c), rng)
        self.instance_norm_2 = _Norm(c, rng)


class SeedLikeGenerator(tf.Module):
    """Seed attribute layout, random weights, independent forward pass."""

    def __init__(self, in_ch=1, hidden=4, out_ch=3, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        h = hidden
        self.c7s1_64_conv = _Conv((7, 7, in_ch, h), rng)
        self.c7s1_64_instance_norm = _Norm(h, rng)
        self.d128_conv = _Conv((3, 3, h, 2 * h), rng)
        self.d128_instance_norm = _Norm(2 * h, rng)
        self.d256_conv = _Conv((3, 3, 2 * h, 4 * h), rng)
        self.d256_instance_norm = _Norm(4 * h, rng)
        for i in range(1, 10):
            setattr(self, f"R256_{i}", _Block(4 * h, rng))
        # conv-transpose kernels are (k, k, out, in)
        self.u128_conv_transpose = _Conv((3, 3, 2 * h, 4 * h), rng)
        self.u128_instance_norm = _Norm(2 * h, rng)
        self.u256_conv_transpose = _Conv((3, 3, h, 2 * h), rng)
        self.u256_instance_norm = _Norm(h, rng)
        self.c7s1_3_conv = _Conv((7, 7, h, out_ch), rng, bias=True)

    @staticmethod
    def _in(x, n):
        mean, var = tf.nn.moments(x, axes=[1, 2], keepdims=True)
        return n.gamma * (x - mean) / tf.sqrt(var + 1e-3) + n.beta

    @staticmethod
    def _pad(x, p):
        return tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT")

    def __call__(self, x):
        x = tf.convert_to_tensor(x, tf.float32)
        y = tf.nn.relu(self._in(tf.nn.conv2d(self._pad(x, 3), self.c7s1_64_conv.kernel, 1,
                                             "VALID"), self.c7s1_64_instance_norm))
        y = tf.nn.relu(self._in(tf.nn.conv2d(self._pad(y, 1), self.d128_conv.kernel, 2,
                                             "VALID"), self.d128_instance_norm))
        y = tf.nn.relu(self._in(tf.nn.conv2d(self._pad(y, 1), self.d256_conv.kernel, 2,
                                             "VALID"), self.d256_instance_norm))
        for i in range(1, 10):
            b = getattr(self, f"R256_{i}")
            z = tf.nn.relu(self._in(tf.nn.conv2d(self._pad(y, 1), b.conv_1.kernel, 1, "VALID"),
                                    b.instance_norm_1))
            z = self._in(tf.nn.conv2d(self._pad(z, 1), b.conv_2.kernel, 1, "VALID"),
                         b.instance_norm_2)
            y = y + z
        for conv, norm in ((self.u128_conv_transpose, self.u128_instance_norm),
                           (self.u256_conv_transpose, self.u256_instance_norm)):
            n, hh, ww, _ = y.shape
            y = tf.nn.conv2d_transpose(y, conv.kernel, [n, 2 * hh, 2 * ww, conv.kernel.shape[2]],
                                       2, "SAME")
            y = tf.nn.relu(self._in(y, norm))
        y = tf.nn.conv2d(self._pad(y, 3), self.c7s1_3_conv.kernel, 1, "VALID")
        return tf.tanh(y + self.c7s1_3_conv.bias)


def save_seed_checkpoint(folder, n=3, hidden=4, in_ch=1, seed=0):
    """Write ckpt-1..ckpt-n (different weights each) the way the seed's trainer does:
    one ``tf.train.Checkpoint(generator=g)`` saved after each "epoch". Returns one
    independent generator per checkpoint holding that checkpoint's weights."""
    writer = SeedLikeGenerator(in_ch=in_ch, hidden=hidden, seed=seed)
    ckpt = tf.train.Checkpoint(generator=writer)
    gens = []
    for i in range(n):
        g = SeedLikeGenerator(in_ch=in_ch, hidden=hidden, seed=seed + i)
        for a, b in zip(writer.trainable_variables, g.trainable_variables, strict=True):
            a.assign(b)
        ckpt.save(str(folder / "ckpt"))
        gens.append(g)
    return gens


def serve_sketch(path_or_img, size):
    """The seed's utils.py, re-typed: resize, RGBA on white, L, /255, clip."""
    img = path_or_img if isinstance(path_or_img, Image.Image) else Image.open(path_or_img)
    img = img.resize((size, size))
    if img.mode == "RGBA":
        bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
        bg.paste(img, (0, 0), img)
        img = bg
    return np.clip(np.array(img.convert("L")).astype(np.float32) / 255.0, 0, 1)


def serve_output(y):
    return np.clip(((y + 1) * 127.5).astype(np.int32), 0, 255).astype(np.uint8)
