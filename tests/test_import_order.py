"""TensorFlow and the torch stack in one process, in either import order (DESIGN.md)."""

from __future__ import annotations

import subprocess
import sys

import pytest

SNIPPETS = {
    "evalkit, tensorflow, torchmetrics": (
        "import evalkit\nimport tensorflow\n"
        "from torchmetrics.image.fid import FrechetInceptionDistance\n"),
    "tensorflow first, then evalkit and torchmetrics": (
        "import tensorflow\nimport evalkit\n"
        "from torchmetrics.image.fid import FrechetInceptionDistance\nimport torchvision\n"),
    "torchmetrics first, then evalkit's generator": (
        "from torchmetrics.image.fid import FrechetInceptionDistance\nimport evalkit\n"
        "from evalkit.inputs.models import resnet_generator\nresnet_generator(hidden_channels=2)\n"),
    # the model sources (PyTorch pix2pix networks, Keras 3) keep that immunity
    "tensorflow first, then pix2pix networks and torchmetrics": (
        "import tensorflow\nimport evalkit\nfrom evalkit.inputs.models.pix2pix import build_generator\n"
        "from evalkit.inputs.models.pix2pix_arch import Pix2PixArchitecture as A\n"
        "build_generator(A('resnet_6blocks', 'instance', 3, 3, 2))\n"
        "from torchmetrics.image.fid import FrechetInceptionDistance\nimport torchvision\n"),
    "evalkit.inputs.sources, then keras 3 and the seed generator": (
        "import evalkit.inputs.sources\nimport keras\nfrom evalkit.inputs.models import resnet_generator\n"
        "resnet_generator(hidden_channels=2)\n"
        "from torchmetrics.image.fid import FrechetInceptionDistance\n"),
}


@pytest.mark.parametrize("name", list(SNIPPETS))
def test_both_orders_survive(name):
    code = SNIPPETS[name] + "print('alive')\n"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{name}: exit {r.returncode}\n{r.stderr[-2000:]}"
    assert "alive" in r.stdout
