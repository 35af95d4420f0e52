"""HED through the installed OpenCV: a tiny HED-shaped Caffe model built here, converted to
ONNX by `evalkit edges --convert-hed`, run by HedDetector, checked against torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
pytest.importorskip("onnx", reason="converting Caffe to ONNX needs the onnx package (hed extra)")

from evalkit.inputs.edges.convert import ConvertError, caffe_pb, caffe_to_onnx  # noqa: E402
from evalkit.inputs.edges.detectors import HED_MEAN_BGR, HedDetector  # noqa: E402

# HED's shape in miniature: conv (FCN-style big pad) -> side output 1; pool (ceil) -> conv
# -> side output 2 -> deconv x2 -> centre Crop to the data; Concat; 1x1 fuse; Sigmoid.
PROTOTXT = """
name: "tiny_hed"
input: "data"
input_dim: 1 input_dim: 3 input_dim: 40 input_dim: 40
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
  convolution_param { num_output: 4 kernel_size: 3 pad: 5 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "score-dsn1" type: "Convolution" bottom: "conv1" top: "score-dsn1"
  convolution_param { num_output: 1 kernel_size: 1 } }
layer { name: "crop1" type: "Crop" bottom: "score-dsn1" bottom: "data" top: "upscore-dsn1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }
layer { name: "score-dsn2" type: "Convolution" bottom: "conv2" top: "score-dsn2"
  convolution_param { num_output: 1 kernel_size: 1 } }
layer { name: "upsample_2" type: "Deconvolution" bottom: "score-dsn2" top: "score-dsn2-up"
  param { lr_mult: 0 } param { lr_mult: 0 }
  convolution_param { kernel_size: 4 stride: 2 num_output: 1 } }
layer { name: "crop2" type: "Crop" bottom: "score-dsn2-up" bottom: "data" top: "upscore-dsn2" }
layer { name: "concat" type: "Concat" bottom: "upscore-dsn1" bottom: "upscore-dsn2"
  top: "concat-upscore" concat_param { concat_dim: 1 } }
layer { name: "new-score-weighting" type: "Convolution" bottom: "concat-upscore"
  top: "upscore-fuse" convolution_param { num_output: 1 kernel_size: 1 } }
layer { name: "sigmoid-fuse" type: "Sigmoid" bottom: "upscore-fuse" top: "sigmoid-fuse" }
"""

SHAPES = {"conv1": [(4, 3, 3, 3), (4,)], "score-dsn1": [(1, 4, 1, 1), (1,)],
          "conv2": [(4, 4, 3, 3), (4,)], "score-dsn2": [(1, 4, 1, 1), (1,)],
          "upsample_2": [(1, 1, 4, 4), (1,)], "new-score-weighting": [(1, 2, 1, 1), (1,)]}


def _weights(seed: int = 0) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {name: [(rng.normal(0, 0.02 if len(s) == 4 and s[1] == 3 else 0.3, s))
                   .astype(np.float32) for s in shapes] for name, shapes in SHAPES.items()}


def _write_caffe(folder: Path, weights: dict, v1: bool = False) -> tuple[Path, Path]:
    """deploy.prototxt + a binary caffemodel, written with Caffe's field numbers."""
    pb = caffe_pb()
    net = pb.NetParameter(name="tiny_hed")
    for name, arrays in weights.items():
        lay = net.layers.add() if v1 else net.layer.add()
        lay.name = name
        for k, a in enumerate(arrays):
            b = lay.blobs.add()
            if v1 or k == 1:  # old-style num/channels/height/width for some blobs
                n, c, h, w = (1, 1, 1, a.size) if a.ndim == 1 else a.shape
                b.num, b.channels, b.height, b.width = n, c, h, w
            else:
                b.shape.dim.extend(a.shape)
            b.data.extend(a.ravel().tolist())
    proto, model = folder / "deploy.prototxt", folder / "tiny_hed.caffemodel"
    proto.write_text(PROTOTXT)
    model.write_bytes(net.SerializeToString())
    return proto, model


def _reference(rgb: np.ndarray, weights: dict) -> np.ndarray:
    """The same net in torch, on HED's pre-processing (BGR, reflect pad 32, mean)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    t = {k: [torch.from_numpy(a) for a in v] for k, v in weights.items()}
    bgr = rgb[..., ::-1].astype(np.float32)
    p = 32
    padded = np.pad(bgr, ((p, p), (p, p), (0, 0)), mode="reflect") - np.array(HED_MEAN_BGR,
                                                                             np.float32)
    x = torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1)))[None]

    def crop(y):
        dh, dw = (y.shape[2] - x.shape[2]) // 2, (y.shape[3] - x.shape[3]) // 2
        return y[:, :, dh:dh + x.shape[2], dw:dw + x.shape[3]]

    c1 = F.relu(F.conv2d(x, *t["conv1"], padding=5))
    s1 = crop(F.conv2d(c1, *t["score-dsn1"]))
    c2 = F.relu(F.conv2d(F.max_pool2d(c1, 2, 2, ceil_mode=True), *t["conv2"], padding=1))
    s2 = crop(F.conv_transpose2d(F.conv2d(c2, *t["score-dsn2"]), *t["upsample_2"], stride=2))
    fuse = torch.sigmoid(F.conv2d(torch.cat([s1, s2], 1), *t["new-score-weighting"]))
    return fuse[0, 0, p:p + rgb.shape[0], p:p + rgb.shape[1]].numpy()


@pytest.mark.parametrize("v1", [False, True], ids=["layer", "v1-layers"])
def test_tiny_caffe_hed_converts_and_runs_in_opencv(tmp_path: Path, v1: bool):
    weights = _weights()
    proto, model = _write_caffe(tmp_path, weights, v1=v1)
    onnx_path = caffe_to_onnx(proto, model, tmp_path / "hed.onnx")
    det = HedDetector(onnx_path)
    rng = np.random.default_rng(1)
    for h, w in ((40, 40), (37, 53)):  # any image size, odd ones too
        rgb = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
        got = det.probability(rgb)
        want = _reference(rgb, weights)
        assert got.shape == (h, w)
        np.testing.assert_allclose(got, np.clip(want, 0, 1), atol=2e-5)
        assert float(got.std()) > 1e-3  # a real map, not a constant


def test_cli_convert_hed_then_edges_with_it(tmp_path: Path):
    from click.testing import CliRunner
    from PIL import Image

    from evalkit.cli import cli

    proto, model = _write_caffe(tmp_path, _weights(2))
    res = CliRunner().invoke(cli, ["edges", "--convert-hed", str(proto), str(model),
                                   "--out", str(tmp_path / "hed.onnx")])
    assert res.exit_code == 0, res.output
    photos = tmp_path / "photos"
    photos.mkdir()
    yy, xx = np.mgrid[:48, :48]
    disk = np.where(np.hypot(yy - 24, xx - 24) < 14, 230, 30).astype(np.uint8)
    Image.fromarray(np.stack([disk] * 3, -1)).save(photos / "disk.png")
    res = CliRunner().invoke(cli, ["edges", str(photos), "--out", str(tmp_path / "ab"),
                                   "--hed-model", str(tmp_path / "hed.onnx")])
    assert res.exit_code == 0, res.output
    assert "not HED" not in res.output  # no fallback warning with a real HED model
    import json

    rec = json.loads((tmp_path / "ab" / "detector.json").read_text())
    assert rec["detector"].startswith("hed-opencv-dnn:")


def test_unsupported_layers_and_bad_files_fail_clearly(tmp_path: Path):
    proto, model = _write_caffe(tmp_path, _weights())
    bad = tmp_path / "bad.prototxt"
    bad.write_text(PROTOTXT.replace('type: "Sigmoid"', 'type: "Softmax"'))
    with pytest.raises(ConvertError, match="sigmoid-fuse.*Softmax"):
        caffe_to_onnx(bad, model, tmp_path / "x.onnx")
    junk = tmp_path / "junk.caffemodel"
    junk.write_bytes(b"\xff\xff\xff not protobuf")
    with pytest.raises(ConvertError, match="not a Caffe model"):
        caffe_to_onnx(proto, junk, tmp_path / "x.onnx")
