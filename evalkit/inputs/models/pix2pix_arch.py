"""What identifies a pix2pix / CycleGAN generator (no torch import: discovery and the
store use it without loading PyTorch). The networks are in :mod:`evalkit.inputs.models.pix2pix`."""

from __future__ import annotations

from dataclasses import dataclass

#: ``--netG`` values and what they are.
NETGS = {
    "resnet_9blocks": ("resnet", 9),
    "resnet_6blocks": ("resnet", 6),
    "unet_256": ("unet", 8),
    "unet_128": ("unet", 7),
}
NORMS = ("instance", "batch", "none")


@dataclass(frozen=True)
class Pix2PixArchitecture:
    """Everything needed to build a generator that a state dict fits.

    ``inferred`` names the fields that were read from the weights rather than given.
    """

    net_g: str
    norm: str
    input_nc: int
    output_nc: int
    ngf: int
    use_dropout: bool = False
    inferred: tuple[str, ...] = ()

    def describe(self) -> str:
        def tag(field: str) -> str:
            return " (inferred)" if field in self.inferred else ""

        return (f"pix2pix {self.net_g}{tag('net_g')} norm={self.norm}{tag('norm')} "
                f"in={self.input_nc} out={self.output_nc} ngf={self.ngf}"
                f"{' dropout' if self.use_dropout else ''}")

    def size_multiple(self) -> int:
        """Image sizes must be a multiple of this."""
        kind, depth = NETGS[self.net_g]
        return 4 if kind == "resnet" else 2 ** depth
