"""Generator architectures. The seed's ResNet generator (TensorFlow) is the first and
default; :mod:`evalkit.inputs.models.pix2pix` has pix2pix / CycleGAN's (PyTorch).

Names are resolved on first use, so importing one family does not import the other's
framework.
"""

from __future__ import annotations

__all__ = ["InstanceNormalization", "ResnetGenerator", "resnet_generator"]


def __getattr__(name: str):
    if name in __all__:
        from evalkit.inputs.models import resnet

        return getattr(resnet, name)
    raise AttributeError(f"module 'evalkit.inputs.models' has no attribute {name!r}")
