"""PyTorch pix2pix / CycleGAN generators saved by junyanz/pytorch-CycleGAN-and-pix2pix.

Discovery: ``<epoch>_net_G.pth`` and ``latest_net_G.pth`` (pix2pix), and CycleGAN's
``<epoch>_net_G_A.pth`` / ``latest_net_G_A.pth`` (the A -> B generator; ``G_B`` and the
discriminators are not evaluated). The epoch number is the step; ``latest`` takes the step
of the newest numbered file beside it (it was saved then or after) and is ordered after it.

Loading: :mod:`evalkit.inputs.checkpoints.torch_state` (``weights_only`` unpickling, architecture
inferred from keys and shapes unless ``--netG`` / ``--norm`` say it); network:
:mod:`evalkit.inputs.models.pix2pix`, one per architecture and size, reused across checkpoints.
Default input contract: ``pix2pix-torch``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from evalkit.inputs.checkpoints.discover import CheckpointRef, walk_files
from evalkit.inputs.checkpoints.load import CheckpointError
from evalkit.inputs.models.pix2pix_arch import Pix2PixArchitecture
from evalkit.inputs.sources.base import ModelRunner, PreparedSource, SourceOptions
from evalkit.inputs.sources.contracts import PIX2PIX_TORCH, InputContract

KIND = "torch-pix2pix"
DEFAULT_CONTRACT = PIX2PIX_TORCH.name
_NAME_RE = re.compile(r"^(?P<epoch>\d+|latest)_net_(?P<net>G|G_A)\.pth$")


def discover(run_dir: Path, exclude) -> list[CheckpointRef]:
    found = []
    for path in walk_files(run_dir, exclude, "*_net_G*.pth"):
        m = _NAME_RE.match(path.name)
        if m and path.is_file():
            found.append((path, m.group("epoch"), m.group("net")))
    newest: dict[tuple[Path, str], int] = {}
    for path, epoch, net in found:
        if epoch != "latest":
            key = (path.parent, net)
            newest[key] = max(newest.get(key, 0), int(epoch))
    refs = []
    for path, epoch, net in found:
        latest = epoch == "latest"
        step = newest.get((path.parent, net), 0) if latest else int(epoch)
        refs.append(CheckpointRef(name=path.relative_to(run_dir).as_posix(), step=step,
                                  prefix=path, files=[path], kind=KIND, latest=latest))
    return refs


class TorchRunner(ModelRunner):
    """One pix2pix generator (eval mode, CPU) of one architecture at one size."""

    def __init__(self, arch: Pix2PixArchitecture, size: int):
        from evalkit.inputs.models.pix2pix import build_generator

        multiple = arch.size_multiple()
        if size % multiple:
            raise CheckpointError(f"{arch.net_g} needs an image size that is a multiple of "
                                  f"{multiple} (the run serves {size}): pass --image-size "
                                  f"{max(multiple, size // multiple * multiple)}")
        super().__init__(PIX2PIX_TORCH, arch.input_nc, size)
        self.arch = arch
        self.model = build_generator(arch)
        self._expected = self.model.state_dict()

    def load(self, state: dict) -> None:
        """Check then load a normalized state dict (CheckpointError, one line)."""
        from evalkit.inputs.checkpoints.torch_state import check_state

        check_state(state, self._expected)
        self.model.load_state_dict(state, strict=True)

    def forward(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            y = self.model(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())
        return y.permute(0, 2, 3, 1).numpy()


def prepare(ref: CheckpointRef, pool, options: SourceOptions,
            contract: InputContract) -> PreparedSource:
    from evalkit.inputs.checkpoints.torch_state import (
        infer_architecture,
        load_state_dict,
        normalize_state,
    )

    state = normalize_state(load_state_dict(ref.prefix))
    arch = infer_architecture(state, options.net_g, options.norm)

    def open_runner():
        runner = pool.get(arch, options.image_size,
                          factory=lambda: TorchRunner(arch, options.image_size))
        runner.contract = contract
        runner.load(state)
        return runner

    return PreparedSource(f"{arch.describe()}; contract {contract.name}", open_runner)
