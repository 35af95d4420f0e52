"""Both tracks end to end through the CLI: held-out pairs and hand-drawn sketches, with an
injected TorchScript feature extractor so that FID/KID are computed offline."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import evalkit
from evalkit.cli import cli
from tests.conftest import make_ab_folder
from tests.seed_reference import save_seed_checkpoint

REPO = Path(__file__).resolve().parents[1]


def _extractor(path: Path) -> Path:
    import torch

    class Tiny(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.num_features = 8
            self.conv = torch.nn.Conv2d(3, 8, 5, stride=4)
            torch.manual_seed(0)
            torch.nn.init.normal_(self.conv.weight)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.conv(x.float() / 255.0)).mean(dim=(2, 3))

    torch.jit.script(Tiny()).save(str(path))
    return path


@pytest.mark.slow
def test_sketch_track_has_adherence_and_distribution_metrics(tmp_path):
    heldout = make_ab_folder(tmp_path / "heldout", n=6)
    run = tmp_path / "run"
    run.mkdir()
    save_seed_checkpoint(run, n=2, hidden=4)
    ext = _extractor(tmp_path / "features.pt")
    r = CliRunner().invoke(cli, [
        "run", str(run), "--heldout", str(heldout), "--sketches",
        str(REPO / "human_sketches"), "--domain", "car", "--limit", "5",
        "--image-size", "64", "--feature-extractor", str(ext), "--out", str(tmp_path / "out"),
        "--no-report", "--quiet"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    df = evalkit.load_results(tmp_path / "out")
    assert set(df.dataset) == {"heldout/car", "sketches/car"}  # the domain is part of both
    assert set(df.domain) == {"car"}
    sk = df[df.dataset == "sketches/car"].set_index(["checkpoint", "metric"])
    for ckpt in ("car/ckpt-1", "car/ckpt-2"):
        for m in ("adherence_precision", "adherence_recall", "adherence_f1"):
            row = sk.loc[(ckpt, m)]
            assert row.status == "ok" and 0.0 <= row.value <= 1.0
        for m in ("fid", "kid"):
            row = sk.loc[(ckpt, m)]
            assert row.status == "ok", row.reason
            assert row.n == 5  # the five sketches' outputs vs the held-out photos
            assert '"comparable": false' in row["flags"]
    # the mismatch view pairs the two tracks per checkpoint
    mm = CliRunner().invoke(cli, ["results", str(tmp_path / "out"), "--mismatch",
                                  "--format", "csv"])
    assert mm.exit_code == 0
    lines = mm.output.strip().splitlines()
    assert "delta" in lines[0]
    assert any(line.split(",")[0] == "car/ckpt-1" and ",fid," in line for line in lines[1:])
