"""Generator architectures. The seed's ResNet generator is the first and default."""

from evalkit.models.resnet import InstanceNormalization, ResnetGenerator, resnet_generator

__all__ = ["InstanceNormalization", "ResnetGenerator", "resnet_generator"]
