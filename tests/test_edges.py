"""The edge pipeline: PostprocessHED port on probability maps with known answers, the
detectors, AB assembly and the ``evalkit edges`` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from evalkit.inputs.edges import (
    FALLBACK_ID,
    HedDetector,
    detect_edges,
    edge_map,
    edges_to_uint8,
    get_detector,
    make_ab,
    postprocess_hed,
)
from evalkit.inputs.edges.detectors import HED_MEAN_BGR
from evalkit.inputs.edges.postprocess import edges_nms, remove_small_components


def ridge_rows(h: int, w: int, row: float, peak: float = 0.9, sigma: float = 1.5) -> np.ndarray:
    """A horizontal soft edge (Gaussian profile across rows, like HED's blurred output)."""
    y = np.arange(h, dtype=np.float64)[:, None]
    return np.broadcast_to(peak * np.exp(-0.5 * ((y - row) / sigma) ** 2), (h, w)).astype(
        np.float32)


def test_horizontal_ridge_becomes_one_line_on_its_crest():
    out = postprocess_hed(ridge_rows(40, 48, row=20))
    rows, cols = np.nonzero(out)
    assert set(rows.tolist()) == {20}
    # edgesNms fades the 5 px next to each border by k/5: only the outermost column is
    # zeroed (0.9 * 1/5 = 0.18 still passes 25/255).
    assert cols.tolist() == list(range(1, 47))


def test_vertical_ridge_is_found_too():
    out = postprocess_hed(ridge_rows(40, 48, row=13).T.copy())
    rows, cols = np.nonzero(out)
    assert set(cols.tolist()) == {13}
    assert rows.min() == 1 and rows.max() == 46


def test_diagonal_ridge_is_thinned_to_one_pixel_per_row():
    n = 48
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    dist = (xx - yy) / np.sqrt(2.0)
    prob = (0.9 * np.exp(-0.5 * (dist / 1.5) ** 2)).astype(np.float32)
    out = postprocess_hed(prob)
    inner = out[6:-6, 6:-6]
    assert all(inner[r].sum() == 1 for r in range(inner.shape[0]))
    rr, cc = np.nonzero(inner)
    assert np.all(rr == cc)


def test_ring_gives_a_thin_closed_contour_on_the_radius():
    n, r0 = 64, 18.0
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    rad = np.hypot(yy - 32, xx - 32)
    prob = (0.95 * np.exp(-0.5 * ((rad - r0) / 1.5) ** 2)).astype(np.float32)
    out = postprocess_hed(prob)
    assert np.all(np.abs(rad[out] - r0) <= 1.0)
    # thin: no 2x2 block fully on
    blocks = out[:-1, :-1] & out[1:, :-1] & out[:-1, 1:] & out[1:, 1:]
    assert not blocks.any()
    # closed: every angle is covered (one 8-connected component around the centre)
    from skimage.measure import label
    assert label(out, connectivity=2).max() == 1
    # about the length of an 8-connected digital circle (4 * sqrt(2) * r)
    assert abs(out.sum() - 4 * np.sqrt(2) * r0) < 0.1 * 4 * np.sqrt(2) * r0


def test_threshold_is_25_over_255_inclusive():
    assert not postprocess_hed(ridge_rows(32, 32, 16, peak=24.0 / 255)).any()
    assert postprocess_hed(ridge_rows(32, 32, 16, peak=26.0 / 255)).any()
    # custom threshold
    assert not postprocess_hed(ridge_rows(32, 32, 16, peak=0.5), threshold=0.6).any()


def test_components_under_five_pixels_are_removed():
    prob = np.zeros((30, 40), np.float32)
    prob[10, 10:14] = 0.9   # 4 px: removed
    prob[20, 10:15] = 0.9   # 5 px: kept
    out = postprocess_hed(prob)
    assert not out[10].any()
    assert out[20, 10:15].all() and out.sum() == 5
    # 8-connectivity: a diagonal run of 5 is one component and survives
    diag = np.zeros((20, 20), bool)
    for i in range(5):
        diag[5 + i, 5 + i] = True
    assert remove_small_components(diag, 5).sum() == 5
    assert remove_small_components(diag, 6).sum() == 0


def test_nms_keeps_only_the_crest_across_the_edge():
    prob = ridge_rows(20, 20, row=10).astype(np.float64)
    orient = np.full(prob.shape, np.pi / 2)   # normal points along rows
    out = edges_nms(prob, orient, border=0)
    assert np.all(out[10] == prob[10])
    assert np.all(out[np.arange(20) != 10] == 0)
    # with the normal along the ridge instead, nothing is suppressed (equal neighbours
    # never suppress: the toolbox's m = 1.01); the last row and column are special because
    # the toolbox clamps sample coordinates to size - 1.001
    along = edges_nms(prob, np.zeros_like(prob), border=0)
    assert np.all(along[:-1, :-1] == prob[:-1, :-1])


def test_postprocess_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        postprocess_hed(np.full((8, 8), 2.0, np.float32))
    with pytest.raises(ValueError, match="H, W"):
        postprocess_hed(np.zeros((8, 8, 3), np.float32))


def disk_image(n: int = 64, radius: int = 15) -> np.ndarray:
    yy, xx = np.mgrid[0:n, 0:n]
    img = np.full((n, n, 3), 255, np.uint8)
    img[(yy - n // 2) ** 2 + (xx - n // 2) ** 2 < radius ** 2] = (200, 120, 80)
    return img


def test_fallback_detector_outlines_a_disk():
    img = disk_image()
    edges, det_id = detect_edges(img)
    assert det_id == FALLBACK_ID
    assert edges.dtype == np.uint8 and edges.shape == (64, 64)
    assert set(np.unique(edges).tolist()) == {0, 255}
    yy, xx = np.mgrid[0:64, 0:64]
    rad = np.hypot(yy - 32, xx - 32)
    on = edges == 0
    assert np.all(np.abs(rad[on] - 14.5) <= 1.5)
    assert on.sum() > 0.8 * 4 * np.sqrt(2) * 14.5
    assert np.array_equal(edge_map(img), on)


def test_flat_image_has_no_edges_and_detection_is_deterministic():
    flat = np.full((32, 32, 3), 90, np.uint8)
    edges, _ = detect_edges(flat)
    assert np.all(edges == 255)
    img = disk_image()
    assert np.array_equal(detect_edges(img)[0], detect_edges(img)[0])


def test_make_ab_puts_edges_left_and_photo_right():
    img = disk_image(32, 8)
    edges = edges_to_uint8(edge_map(img))
    ab = make_ab(img, edges)
    assert ab.size == (64, 32) and ab.mode == "RGB"
    arr = np.asarray(ab)
    assert np.array_equal(arr[:, :32, 0], edges)
    assert np.array_equal(arr[:, 32:], img)
    with pytest.raises(ValueError, match="differ in size"):
        make_ab(img, edges[:16])


def test_unknown_detector_and_hed_without_model_fail_clearly():
    with pytest.raises(ValueError, match="unknown edge detector"):
        get_detector("canny2000")
    with pytest.raises(ValueError, match="HED model"):
        get_detector("hed")


class _FakeNet:
    """Stands in for HED's network: returns the padded blue channel (mean added back) / 255,
    so the expected probability map is the photo's blue channel / 255."""

    def __init__(self):
        self.blob = None

    def setInput(self, blob):  # noqa: N802 - OpenCV's API
        self.blob = blob

    def forward(self):
        return (self.blob[:, 0:1] + HED_MEAN_BGR[0]) / 255.0


def test_hed_preprocessing_pads_subtracts_mean_in_bgr_and_crops(tmp_path):
    model = tmp_path / "hed.onnx"
    model.write_bytes(b"not a real model")
    det = HedDetector(model)
    assert det.id.startswith("hed-opencv-dnn:")
    fake = _FakeNet()
    det._net = fake
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(20, 28, 3), dtype=np.uint8)
    prob = det.probability(img)
    assert fake.blob.shape == (1, 3, 20 + 64, 28 + 64)
    # channel 0 of the blob is blue minus 104.007, reflect-padded by 32
    padded_blue = np.pad(img[..., 2].astype(np.float32), 32, mode="reflect")
    np.testing.assert_allclose(fake.blob[0, 0] + HED_MEAN_BGR[0], padded_blue, atol=1e-3)
    np.testing.assert_allclose(fake.blob[0, 2] + HED_MEAN_BGR[2],
                               np.pad(img[..., 0].astype(np.float32), 32, mode="reflect"),
                               atol=1e-3)
    np.testing.assert_allclose(prob, img[..., 2] / 255.0, atol=1e-5)


def test_edges_command_writes_ab_pairs_and_detector_json(tmp_path):
    from evalkit.commands.edges import edges as edges_cmd

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(disk_image(48, 12)).save(photos / "a.png")
    Image.fromarray(disk_image(40, 9)).save(photos / "b.jpg")
    (photos / "broken.png").write_bytes(b"\x89PNG garbage")
    out = tmp_path / "ab"
    res = CliRunner().invoke(edges_cmd, [str(photos), "--out", str(out), "--size", "32",
                                         "--format", "png"])
    assert res.exit_code == 1, res.output  # one photo was skipped
    assert sorted(p.name for p in out.glob("*.png")) == ["a.png", "b.png"]
    ab = Image.open(out / "a.png")
    assert ab.size == (64, 32)
    record = json.loads((out / "detector.json").read_text())
    assert record["detector"] == FALLBACK_ID
    assert record["postprocess"]["threshold"] == pytest.approx(25 / 255)
    assert record["count"] == 2
    assert "broken.png" in res.output
    # the pairs load as a held-out set
    from evalkit.inputs.data.pairs import load_pairs
    ds = load_pairs(out, size=32)
    assert len(ds) == 2


def test_edges_command_skips_bad_images_goes_on_and_warns_about_the_fallback(tmp_path):
    """A 1x1 image, a truncated one, same-stem photos: listed or kept apart, the command
    goes on, exit 1; the fallback warning says the pairs are not HED edges."""
    from evalkit.commands.edges import edges as edges_cmd

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(disk_image(32, 8)).save(photos / "x.png")
    Image.fromarray(disk_image(32, 10)).save(photos / "x.jpg")  # same stem
    Image.new("RGB", (1, 1), (9, 9, 9)).save(photos / "tiny.png")
    full = (photos / "x.png").read_bytes()
    (photos / "cut.png").write_bytes(full[: len(full) // 2])
    (photos / "notes.txt").write_text("hi")
    out = tmp_path / "ab"
    res = CliRunner().invoke(edges_cmd, [str(photos), "--out", str(out), "--format", "png"])
    assert res.exit_code == 1, res.output
    assert sorted(p.name for p in out.glob("*.png")) == ["x.png", "x_png.png"]
    for name in ("tiny.png", "cut.png", "notes.txt"):
        assert f"{name}:" in res.output, name
    assert "1x1 px" in res.output
    assert "NOT HED edges" in res.output and "score differently" in res.output
    record = json.loads((out / "detector.json").read_text())
    assert record["hed"] is False and "not HED edges" in record["warning"]
    from evalkit.inputs.data.pairs import load_pairs

    ds = load_pairs(out, size=32)
    assert ds.ids == ["x.png", "x_png.png"]
    assert ds.meta["edge_detector"] == FALLBACK_ID and ds.meta["edges"]["hed"] is False
