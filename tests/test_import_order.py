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
        "from evalkit.models import resnet_generator\nresnet_generator(hidden_channels=2)\n"),
}


@pytest.mark.parametrize("name", list(SNIPPETS))
def test_both_orders_survive(name):
    code = SNIPPETS[name] + "print('alive')\n"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{name}: exit {r.returncode}\n{r.stderr[-2000:]}"
    assert "alive" in r.stdout
