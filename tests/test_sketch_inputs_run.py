"""`evalkit run` on folders that used to crash it: same-stem files, a manifest entry listed
twice, manifest paths leaving the set. Everything usable is evaluated, the rest listed."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from evalkit.cli import cli
from tests.conftest import make_ab_folder

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_same_stems_and_repeated_manifest_entries_through_run(tmp_path: Path, seed_run: Path):
    heldout = make_ab_folder(tmp_path / "heldout", n=3)
    (heldout / "pair_00.png").rename(heldout / "x.png")
    Image.open(heldout / "x.png").convert("RGB").save(heldout / "x.jpg", quality=95)
    sketches = tmp_path / "sketches"
    (sketches / "car").mkdir(parents=True)
    src = REPO / "human_sketches" / "car"
    shutil.copy(src / "car_01.png", sketches / "car" / "x.png")
    Image.open(src / "car_02.png").convert("RGB").save(sketches / "car" / "x.jpg", quality=95)
    (tmp_path / "private.png").write_bytes((src / "car_03.png").read_bytes())
    entries = [{"file": f, "domain": "car", "provenance": "test"}
               for f in ("car/x.png", "car/x.jpg", "car/x.png", str(tmp_path / "private.png"),
                         "../private.png")]
    (sketches / "manifest.json").write_text(json.dumps({"sketches": entries}))
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["run", str(seed_run), "--heldout", str(heldout),
                                   "--sketches", str(sketches), "--out", str(out),
                                   "--image-size", "32", "--no-report", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "skipped car/x.png: listed twice in manifest.json (entry 3); the first " \
           "(entry 1) is used" in res.output
    assert f"skipped {tmp_path / 'private.png'}: refused: absolute path" in res.output
    assert "skipped ../private.png: refused: '..'" in res.output
    with sqlite3.connect(out / "results.sqlite") as db:
        rows = db.execute("SELECT dataset, sample_id FROM samples ORDER BY dataset, idx").fetchall()
    ids: dict[str, list[str]] = {}
    for dataset, sid in rows:
        ids.setdefault(dataset.split("/")[0], []).append(sid)
    assert ids["heldout"] == ["pair_01.png", "pair_02.png", "x.jpg", "x.png"]
    assert ids["sketches"] == ["car/x.png", "car/x.jpg"]
    # the same sketch set passes check except for the problems run listed
    res = CliRunner().invoke(cli, ["sketches", "check", str(sketches), "--json"])
    problems = {(p["file"], p["check"]) for p in json.loads(res.output)["problems"]}
    assert ("car/x.png", "manifest") in problems  # listed twice
    assert ("../private.png", "manifest") in problems
