"""The pix2pix-torch input contract against upstream's own test transform (torchvision),
and where the two differ (documented in evalkit/inputs/sources/contracts.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import evalkit  # noqa: F401
from evalkit.inputs.data.serving import output_to_uint8, sketch_to_input
from evalkit.inputs.sources.contracts import PIX2PIX_TORCH, SEED, ContractError, get_contract
from tests.conftest import shared_path


def upstream_transform(path, size: int, input_nc: int) -> np.ndarray:
    """data/base_dataset.get_transform at test time (resize_and_crop, load = crop size,
    no flip), after ``Image.open(path).convert('RGB')``; returned as HWC."""
    import torchvision.transforms as T

    steps = [T.Grayscale(1)] if input_nc == 1 else []
    steps += [T.Resize((size, size), T.InterpolationMode.BICUBIC), T.ToTensor(),
              T.Normalize((0.5,) * input_nc, (0.5,) * input_nc)]
    x = T.Compose(steps)(Image.open(path).convert("RGB"))
    return x.permute(1, 2, 0).numpy()


def _served(path, size):
    return sketch_to_input(path, size)[None, ..., None]


@pytest.mark.parametrize("input_nc", [3, 1])
def test_exact_on_real_hand_drawn_sketches(input_nc):
    files = sorted(shared_path("sketches", "real").rglob("*.png"))
    assert len(files) >= 20
    for f in files:
        for size in (64, 256):
            ours = PIX2PIX_TORCH.to_model(_served(f, size), input_nc)[0]
            assert np.array_equal(ours, upstream_transform(f, size, input_nc)), (f.name, size)


def test_exact_on_grey_strokes_on_white(tmp_path):
    im = Image.new("RGB", (90, 70), "white")
    d = ImageDraw.Draw(im)
    d.line((5, 5, 80, 60), fill=(40, 40, 40), width=3)
    d.ellipse((20, 10, 60, 50), outline=(0, 0, 0), width=2)
    im.save(tmp_path / "s.png")
    ours = PIX2PIX_TORCH.to_model(_served(tmp_path / "s.png", 32), 3)[0]
    assert np.array_equal(ours, upstream_transform(tmp_path / "s.png", 32, 3))


def test_differs_with_alpha_and_colour(tmp_path):
    """The seed pastes RGBA on white; pix2pix's convert('RGB') drops alpha, so a
    transparent export turns black there. Colour strokes: pix2pix sees colour."""
    rgba = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).line((5, 5, 60, 60), fill=(0, 0, 0, 255), width=3)
    rgba.save(tmp_path / "t.png")
    ours = PIX2PIX_TORCH.to_model(_served(tmp_path / "t.png", 32), 3)[0]
    theirs = upstream_transform(tmp_path / "t.png", 32, 3)
    assert ours.mean() > 0.8 and theirs.max() == -1.0  # white page vs all black
    red = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(red).line((5, 5, 60, 60), fill=(255, 0, 0), width=3)
    red.save(tmp_path / "r.png")
    ours = PIX2PIX_TORCH.to_model(_served(tmp_path / "r.png", 32), 3)[0]
    theirs = upstream_transform(tmp_path / "r.png", 32, 3)
    assert np.allclose(ours[..., 0], ours[..., 1]) and not np.allclose(theirs[..., 0],
                                                                        theirs[..., 1])


def test_seed_contract_is_the_served_input():
    x = np.random.default_rng(0).random((2, 8, 8, 1)).astype(np.float32)
    assert np.array_equal(SEED.to_model(x, 1), x)
    with pytest.raises(ContractError, match="3 input channels"):
        SEED.to_model(x, 3)
    with pytest.raises(ContractError, match="unknown --contract"):
        get_contract("tf")
    assert PIX2PIX_TORCH.to_model(x, 3).min() >= -1


def test_one_output_contract_for_both_families():
    """tensor2im ((y + 1) / 2 * 255 -> uint8) equals the seed's output_to_uint8 byte for
    byte on [-1, 1], including values on quantization boundaries."""
    rng = np.random.default_rng(0)
    edges = (np.arange(256, dtype=np.float32) / np.float32(127.5)) - 1
    y = np.concatenate([rng.uniform(-1, 1, 200_000).astype(np.float32), edges,
                        np.nextafter(edges, np.float32(-2)), np.nextafter(edges, np.float32(2)),
                        np.float32([-1, 1])])
    y = np.clip(y, -1, 1)
    t = torch.from_numpy(y).numpy()
    tensor2im = ((t + 1) / 2.0 * 255.0).astype(np.uint8)
    assert np.array_equal(tensor2im, output_to_uint8(y))
