"""Named input contracts: how a served sketch becomes a model's input.

Every dataset holds ONE served input per sample, made by the seed's serving contract
(:mod:`evalkit.inputs.data.serving`): Pillow ``resize((S, S))`` (bicubic) -> RGBA pasted on white
-> ``L`` -> ``/255`` -> ``(N, S, S, 1)`` float32 in [0, 1]. A contract maps that array to
what a given model family was trained on, as ``(N, S, S, C)`` float32 (NHWC; runners
transpose for NCHW models):

``seed``
    the served array unchanged (the seed's generator, and exports of it).
``pix2pix-torch``
    junyanz/pytorch-CycleGAN-and-pix2pix's test-time transform (``data/base_dataset.py``
    ``get_transform`` with ``--preprocess resize_and_crop``, load size = crop size, no flip):
    ``Image.convert('RGB')`` [-> ``Grayscale(1)`` when the model has one input channel]
    -> ``Resize((S, S), BICUBIC)`` -> ``ToTensor`` -> ``Normalize(0.5, 0.5)``, i.e.
    ``x / 255 * 2 - 1``. Here: the served grey level is replicated to the model's channels
    and mapped by ``(x - 0.5) / 0.5`` (the same float32 operations as ``Normalize``).

When the two agree exactly (tested in tests/test_contracts.py): for sketches stored
without alpha whose pixels are grey (R = G = B, or mode ``L``), the seed's path (resize,
then ``L``) and pix2pix's (``RGB``, resize) give the same 8-bit values, because Pillow
resizes every band alike and maps a grey RGB pixel to the same ``L`` value. They differ for
(a) images with alpha: the seed composites on white, pix2pix's ``convert('RGB')`` drops
alpha (a transparent app export turns black there); (b) coloured strokes or JPEG colour
noise: pix2pix's 3-channel models see the colour, the served input only its luminance;
(c) palette images, which Pillow resizes with ``NEAREST`` before conversion. evalkit
evaluates what the seed's service would feed; hand-drawn sketch sets made by
``evalkit sketches import`` are grey on white without alpha, so there the contract is exact.

Output: both families end in ``tanh``; the seed's ``(y + 1) * 127.5 -> int32 -> clip``
and pix2pix's ``tensor2im`` ``((y + 1) / 2 * 255).astype(uint8)`` give identical bytes for
y in [-1, 1] (halving is exact in binary floating point), so one output contract
(:func:`evalkit.inputs.data.serving.output_to_uint8`) serves both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class ContractError(ValueError):
    """A contract that cannot feed a model (channels), or an unknown contract name."""


@dataclass(frozen=True)
class InputContract:
    """One named input contract (see the module docstring)."""

    name: str
    description: str
    #: channel counts of the model this contract can feed from a 1-channel served input
    replicate: bool
    signed: bool

    def model_channels_ok(self, served: int, model: int) -> bool:
        return model == served or (self.replicate and served == 1 and model in (1, 3))

    def to_model(self, served: np.ndarray, channels: int) -> np.ndarray:
        """``(N, S, S, c)`` float32 in [0, 1] -> ``(N, S, S, channels)`` model input."""
        x = np.asarray(served, dtype=np.float32)
        if x.shape[-1] != channels:
            if not self.model_channels_ok(x.shape[-1], channels):
                raise ContractError(
                    f"contract {self.name} cannot feed a model with {channels} input "
                    f"channels from {x.shape[-1]}-channel served inputs")
            x = np.repeat(x, channels, axis=-1)
        if self.signed:
            x = (x - np.float32(0.5)) / np.float32(0.5)
        return np.ascontiguousarray(x, dtype=np.float32)


SEED = InputContract("seed", "served grey sketch in [0, 1], white = 1 (the seed's utils.py)",
                     replicate=False, signed=False)
PIX2PIX_TORCH = InputContract(
    "pix2pix-torch", "grey sketch replicated to the model's channels, (x - 0.5) / 0.5 in "
    "[-1, 1] (pytorch-CycleGAN-and-pix2pix test transform)", replicate=True, signed=True)

CONTRACTS: dict[str, InputContract] = {c.name: c for c in (SEED, PIX2PIX_TORCH)}


def get_contract(name: str) -> InputContract:
    try:
        return CONTRACTS[name]
    except KeyError:
        raise ContractError(f"unknown --contract {name!r}: use one of "
                            f"{', '.join(CONTRACTS)}") from None
