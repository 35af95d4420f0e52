"""The seed's generator: CycleGAN's ResNet generator in TensorFlow (tf-keras).

Layer attribute names follow the seed exactly, so that
``tf.train.Checkpoint(generator=resnet_generator())`` writes and reads the same 73 keys as
the deployed iCanvas checkpoints (``generator/R256_1/conv_1/kernel/.ATTRIBUTES/VARIABLE_VALUE``
and so on; see DESIGN.md section 1).

Architecture (CycleGAN notation, widths for ``hidden_channels=64``)::

    c7s1-64  d128  d256  R256 x 9  u128  u64  c7s1-3 (tanh)

Input ``(N, H, W, input_channels)`` float32 in [0, 1] (white background = 1); output
``(N, H, W, output_channels)`` float32 in [-1, 1]. ``H`` and ``W`` must be multiples of 4.
"""

from __future__ import annotations

from evalkit.core.tf import tf, tf_keras

#: Instance-norm epsilon of tensorflow_addons' ``InstanceNormalization`` (its default).
INSTANCE_NORM_EPSILON = 1e-3
N_RESIDUAL_BLOCKS = 9


def _reflect_pad(x, pad: int):
    return tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")


def _conv_init():
    # pix2pix / CycleGAN initialise conv weights from N(0, 0.02).
    return tf_keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


class InstanceNormalization(tf_keras.layers.Layer):
    """Instance normalization with tensorflow_addons' math (tfa is no longer maintained).

    For every sample and channel, over the spatial axes H and W::

        y = gamma * (x - mean) / sqrt(var + epsilon) + beta

    with the biased (population) variance and ``epsilon = 1e-3``, computed like tfa's
    ``GroupNormalization(groups=-1)``: ``tf.nn.moments`` then ``tf.nn.batch_normalization``.
    Ulyanov et al., "Instance Normalization: The Missing Ingredient for Fast Stylization", 2016.
    Variables ``gamma`` and ``beta`` have shape ``(channels,)``, as in tfa.
    """

    def __init__(self, epsilon: float = INSTANCE_NORM_EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros")
        super().build(input_shape)

    def call(self, x):
        mean, variance = tf.nn.moments(x, axes=[1, 2], keepdims=True)
        return tf.nn.batch_normalization(
            x, mean, variance, offset=self.beta, scale=self.gamma,
            variance_epsilon=self.epsilon,
        )

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


class ResidualBlock(tf_keras.layers.Layer):
    """R-block: pad-conv3x3-IN-relu-pad-conv3x3-IN plus the identity skip."""

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.conv_1 = tf_keras.layers.Conv2D(
            channels, 3, padding="valid", use_bias=False, kernel_initializer=_conv_init())
        self.instance_norm_1 = InstanceNormalization()
        self.conv_2 = tf_keras.layers.Conv2D(
            channels, 3, padding="valid", use_bias=False, kernel_initializer=_conv_init())
        self.instance_norm_2 = InstanceNormalization()

    def call(self, x):
        y = tf.nn.relu(self.instance_norm_1(self.conv_1(_reflect_pad(x, 1))))
        y = self.instance_norm_2(self.conv_2(_reflect_pad(y, 1)))
        return x + y


class ResnetGenerator(tf_keras.Model):
    """The seed's ResNet generator; see the module docstring for shapes and ranges."""

    def __init__(self, input_channels: int = 1, output_channels: int = 3,
                 hidden_channels: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.input_channels = input_channels
        self.output_channels = output_channels
        self.hidden_channels = hidden_channels
        h = hidden_channels
        conv = tf_keras.layers.Conv2D
        convt = tf_keras.layers.Conv2DTranspose
        init = _conv_init
        self.c7s1_64_conv = conv(h, 7, padding="valid", use_bias=False, kernel_initializer=init())
        self.c7s1_64_instance_norm = InstanceNormalization()
        self.d128_conv = conv(2 * h, 3, strides=2, padding="valid", use_bias=False,
                              kernel_initializer=init())
        self.d128_instance_norm = InstanceNormalization()
        self.d256_conv = conv(4 * h, 3, strides=2, padding="valid", use_bias=False,
                              kernel_initializer=init())
        self.d256_instance_norm = InstanceNormalization()
        for i in range(1, N_RESIDUAL_BLOCKS + 1):
            setattr(self, f"R256_{i}", ResidualBlock(4 * h))
        self.u128_conv_transpose = convt(2 * h, 3, strides=2, padding="same", use_bias=False,
                                         kernel_initializer=init())
        self.u128_instance_norm = InstanceNormalization()
        self.u256_conv_transpose = convt(h, 3, strides=2, padding="same", use_bias=False,
                                        kernel_initializer=init())
        self.u256_instance_norm = InstanceNormalization()
        self.c7s1_3_conv = conv(output_channels, 7, padding="valid", use_bias=True,
                                kernel_initializer=init())
        self.build((None, None, None, input_channels))

    def call(self, x, training=None):
        y = tf.nn.relu(self.c7s1_64_instance_norm(self.c7s1_64_conv(_reflect_pad(x, 3))))
        y = tf.nn.relu(self.d128_instance_norm(self.d128_conv(_reflect_pad(y, 1))))
        y = tf.nn.relu(self.d256_instance_norm(self.d256_conv(_reflect_pad(y, 1))))
        for i in range(1, N_RESIDUAL_BLOCKS + 1):
            y = getattr(self, f"R256_{i}")(y)
        y = tf.nn.relu(self.u128_instance_norm(self.u128_conv_transpose(y)))
        y = tf.nn.relu(self.u256_instance_norm(self.u256_conv_transpose(y)))
        return tf.nn.tanh(self.c7s1_3_conv(_reflect_pad(y, 3)))


def resnet_generator(input_channels: int = 1, output_channels: int = 3,
                     hidden_channels: int = 64) -> ResnetGenerator:
    """Build the seed generator with its variables created (11,377,155 parameters at
    ``hidden_channels=64`` and one input channel)."""
    return ResnetGenerator(input_channels, output_channels, hidden_channels)
