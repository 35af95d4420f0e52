"""Offline-first weights: lookup order, hash checks, status/fetch/import, and `evalkit run`
without weights (other metrics stored, FID/KID/LPIPS skipped with one clear line)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import evalkit
from evalkit.cli import cli
from evalkit.measure import weights as W
from tests.conftest import make_ab_folder


@pytest.fixture
def dirs(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """An empty EVALKIT_WEIGHTS_DIR and an empty TORCH_HOME (so no real file is found)."""
    env, th = tmp_path / "evalkit-weights", tmp_path / "torch-home"
    monkeypatch.setenv("EVALKIT_WEIGHTS_DIR", str(env))
    monkeypatch.setenv("TORCH_HOME", str(th))
    return env, th / "hub" / "checkpoints"


def _fake_weight(monkeypatch, key: str, payload: bytes, full: bool = True) -> W.WeightFile:
    """Register ``payload`` as the valid content of weight ``key`` (tests only)."""
    digest = hashlib.sha256(payload).hexdigest()
    w = dataclasses.replace(W.REGISTRY[key], sha256=digest if full else None,
                            sha256_prefix=digest[:8], size=len(payload))
    monkeypatch.setitem(W.REGISTRY, key, w)
    return w


def test_registry_names_and_hashes():
    assert W.INCEPTION.name == "weights-inception-2015-12-05-6726825d.pth"
    assert W.ALEXNET.name == "alexnet-owt-7be5be79.pth"
    for w in W.REGISTRY.values():
        assert w.name.endswith(f"-{w.sha256_prefix}.pth")  # torch hub naming convention
        assert w.url.endswith("/" + w.name)
        if w.sha256:
            assert len(w.sha256) == 64 and w.sha256.startswith(w.sha256_prefix)
    assert W.INCEPTION.matches(W.INCEPTION.sha256)
    assert not W.INCEPTION.matches("6726825d" + "0" * 56)  # full digest, not just the prefix
    assert W.ALEXNET.hash_check == "sha256-prefix"
    assert W.ALEXNET.matches("7be5be79" + "a" * 56) and not W.ALEXNET.matches("0" * 64)


def test_lookup_order_env_dir_then_torch_hub(dirs, monkeypatch):
    env, hub = dirs
    assert W.search_dirs() == [env, hub]
    _fake_weight(monkeypatch, "alexnet", b"alex-bytes")
    assert W.locate("alexnet") is None
    with pytest.raises(W.WeightsMissing) as ei:
        W.resolve("alexnet")
    assert ei.value.file_name == "alexnet-owt-7be5be79.pth"
    assert str(env) in str(ei.value) and str(hub) in str(ei.value)
    hub.mkdir(parents=True)
    (hub / W.ALEXNET.name).write_bytes(b"alex-bytes")
    assert W.resolve("alexnet") == hub / W.ALEXNET.name
    env.mkdir()
    (env / W.ALEXNET.name).write_bytes(b"wrong")  # the first hit wins and is checked
    with pytest.raises(W.WeightsMissing, match="has sha256 .* expected"):
        W.resolve("alexnet")
    monkeypatch.delenv("EVALKIT_WEIGHTS_DIR")
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(env.parent / "xdg"))
    assert W.search_dirs() == [env.parent / "xdg" / "torch" / "hub" / "checkpoints"]


def test_import_checks_hash_and_places_under_registry_name(dirs, monkeypatch, tmp_path):
    env, _ = dirs
    _fake_weight(monkeypatch, "inception", b"inception-bytes" * 100)
    src = tmp_path / "downloaded-with-another-name.bin"
    src.write_bytes(b"inception-bytes" * 100)
    target = W.import_file(src)
    assert target == env / W.INCEPTION.name and target.read_bytes() == src.read_bytes()
    assert W.resolve("inception") == target
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a weight file")
    with pytest.raises(ValueError, match="none of the weight files"):
        W.import_file(junk)
    assert sorted(p.name for p in env.iterdir()) == [W.INCEPTION.name]  # no leftovers


def test_import_with_prefix_only_hash(dirs, monkeypatch, tmp_path):
    _fake_weight(monkeypatch, "alexnet", b"alexnet-bytes", full=False)
    src = tmp_path / "a.pth"
    src.write_bytes(b"alexnet-bytes")
    dest = tmp_path / "elsewhere"
    assert W.import_file(src, dest=dest) == dest / W.ALEXNET.name


class _FakeResponse(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def test_fetch_downloads_checks_and_refuses_bad_bytes(dirs, monkeypatch):
    import urllib.request

    env, _ = dirs
    payload = b"x" * 3_000_000
    _fake_weight(monkeypatch, "alexnet", payload)
    served = {"data": payload, "urls": []}

    def urlopen(req, timeout=None):
        served["urls"].append(req.full_url)
        return _FakeResponse(served["data"])

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    logs: list[str] = []
    [p] = W.fetch(["alexnet"], progress=False, log=logs.append)
    assert p == env / W.ALEXNET.name and p.read_bytes() == payload
    assert served["urls"] == [W.ALEXNET.url]
    W.fetch(["alexnet"], progress=False, log=logs.append)  # present and valid: no download
    assert len(served["urls"]) == 1 and "already present" in logs[-1]

    served["data"] = b"y" * 1000  # a corrupted download
    p.unlink()
    with pytest.raises(ValueError, match="sha256"):
        W.fetch(["alexnet"], progress=False, log=logs.append)
    assert list(env.iterdir()) == []  # nothing installed, no partial file


def test_fetch_without_network_is_a_clear_error(dirs, monkeypatch):
    import urllib.error
    import urllib.request

    def offline(req, timeout=None):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    r = CliRunner().invoke(cli, ["weights", "fetch", "inception", "--quiet"])
    assert r.exit_code == 1
    assert "cannot download weights-inception-2015-12-05-6726825d.pth" in r.output
    assert "evalkit weights import FILE" in r.output
    assert not any(dirs[0].glob("*")) if dirs[0].exists() else True


def test_status_command_lists_every_file(dirs, monkeypatch, tmp_path):
    env, hub = dirs
    r = CliRunner().invoke(cli, ["weights", "status", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["search_dirs"] == [str(env), str(hub)]
    rows = {f["name"]: f for f in data["files"]}
    inc = rows["weights-inception-2015-12-05-6726825d.pth"]
    assert inc["state"] == "missing" and inc["used_by"] == ["fid", "kid"]
    assert inc["expected"] == W.INCEPTION.sha256 and inc["looked_in"] == [str(env), str(hub)]
    assert rows["alexnet-owt-7be5be79.pth"]["state"] == "missing"
    lin = rows["lpips_models/alex.pth"]
    assert lin["state"] == "bundled" and Path(lin["path"]).is_file() and len(lin["sha256"]) == 64

    assert CliRunner().invoke(cli, ["weights", "status", "--check"]).exit_code == 1
    text = CliRunner().invoke(cli, ["weights", "status"]).output
    assert "weights-inception-2015-12-05-6726825d.pth  [missing]" in text
    assert "evalkit weights fetch" in text

    w = _fake_weight(monkeypatch, "alexnet", b"alex")
    hub.mkdir(parents=True)
    (hub / w.name).write_bytes(b"alex")
    rows = {f["key"]: f for f in json.loads(
        CliRunner().invoke(cli, ["weights", "status", "--json"]).output)["files"]}
    assert rows["alexnet"]["state"] == "found" and rows["alexnet"]["size"] == 4
    assert rows["alexnet"]["path"] == str(hub / w.name)
    (hub / w.name).write_bytes(b"changed")
    rows = {f["key"]: f for f in json.loads(
        CliRunner().invoke(cli, ["weights", "status", "--json"]).output)["files"]}
    assert rows["alexnet"]["state"] == "bad-hash"


def test_import_command(dirs, monkeypatch, tmp_path):
    _fake_weight(monkeypatch, "inception", b"inc")
    good, bad = tmp_path / "good.pth", tmp_path / "bad.pth"
    good.write_bytes(b"inc")
    bad.write_bytes(b"nope")
    r = CliRunner().invoke(cli, ["weights", "import", str(good)])
    assert r.exit_code == 0 and "hash ok" in r.output
    assert (dirs[0] / W.INCEPTION.name).read_bytes() == b"inc"
    r = CliRunner().invoke(cli, ["weights", "import", str(bad)])
    assert r.exit_code == 2 and "none of the weight files" in r.output


@pytest.mark.slow
def test_offline_run_stores_paired_metrics_and_skips_perceptual_ones(dirs, tmp_path):
    """`evalkit run` on a seed-format run with no weights anywhere: exit 0, l1/ssim/psnr
    stored, fid/kid/lpips skipped, one line per missing file naming it and the fix."""
    from tests.seed_reference import save_seed_checkpoint

    heldout = make_ab_folder(tmp_path / "heldout", n=4)
    (tmp_path / "run").mkdir()
    save_seed_checkpoint(tmp_path / "run", n=2, hidden=4)
    r = CliRunner().invoke(cli, ["run", str(tmp_path / "run"), "--heldout", str(heldout),
                                 "--out", str(tmp_path / "out"), "--image-size", "32",
                                 "--no-report", "--quiet"])
    assert r.exit_code == 0, r.output
    df = evalkit.load_results(tmp_path / "out")
    for name in ("ckpt-1", "ckpt-2"):
        got = df[df.checkpoint == name].set_index("metric")
        for m in ("l1", "ssim", "psnr"):
            assert got.loc[m, "status"] == "ok" and got.loc[m, "n"] == 4
        for m in ("fid", "kid", "lpips"):
            assert got.loc[m, "status"] == "skipped"
            assert json.loads(got.loc[m, "flags"])["retryable"] is True
    lines = [ln for ln in r.output.splitlines() if "skipped: weights file" in ln]
    assert len(lines) == 2, r.output
    inc = next(ln for ln in lines if "fid/kid" in ln)
    alex = next(ln for ln in lines if "lpips" in ln)
    assert "weights-inception-2015-12-05-6726825d.pth not found" in inc
    assert "alexnet-owt-7be5be79.pth not found" in alex
    for ln in lines:
        assert "'evalkit weights fetch'" in ln and "'evalkit weights import FILE'" in ln


@pytest.mark.slow
def test_run_with_custom_extractor_extracts_real_features_once(tmp_path, dirs):
    """`--feature-extractor FILE.pt`: FID/KID stored for every checkpoint, marked not
    comparable; the real images went through the extractor once for the whole run."""
    import torch

    from tests.seed_reference import save_seed_checkpoint
    from tests.test_distribution import _TinyExtractor

    ext = tmp_path / "ext.pt"
    torch.jit.script(_TinyExtractor()).save(str(ext))
    heldout = make_ab_folder(tmp_path / "heldout", n=5)
    (tmp_path / "run").mkdir()
    save_seed_checkpoint(tmp_path / "run", n=3, hidden=4)
    r = CliRunner().invoke(cli, ["run", str(tmp_path / "run"), "--heldout", str(heldout),
                                 "--out", str(tmp_path / "out"), "--image-size", "32",
                                 "--feature-extractor", str(ext), "--no-report", "--quiet"])
    assert r.exit_code == 0, r.output
    df = evalkit.load_results(tmp_path / "out")
    fid = df[df.metric == "fid"]
    assert len(fid) == 3 and (fid.status == "ok").all() and (fid.n == 5).all()
    flags = json.loads(fid.iloc[0]["flags"])
    assert flags["comparable"] is False and flags["biased_small_n"] is True
    assert flags["extractor"] == "torchscript:ext.pt"
    feats = tmp_path / "out" / "cache" / "features"
    assert len(list((feats / "real").glob("*.npy"))) == 1
    assert len(list((feats / "fake").glob("*.npy"))) == 3


def test_status_exit_1_only_for_a_present_but_unusable_file(dirs, monkeypatch, tmp_path):
    """Not installed: exit 0 (reported with what it disables and the fix) unless
    --check/--require; present but corrupt or unreadable: exit 1 naming file, cause, fix."""
    env, hub = dirs
    r = CliRunner().invoke(cli, ["weights", "status"])
    assert r.exit_code == 0, r.output
    assert "2 file(s) not installed: fid, kid, lpips will be skipped" in r.output
    assert "fix:      run 'evalkit weights fetch inception'" in r.output
    assert CliRunner().invoke(cli, ["weights", "status", "--require"]).exit_code == 1

    w = _fake_weight(monkeypatch, "alexnet", b"alex")
    env.mkdir(parents=True)
    bad = env / w.name
    bad.write_bytes(b"truncat")
    r = CliRunner().invoke(cli, ["weights", "status"])
    assert r.exit_code == 1, r.output
    err = next(ln for ln in r.output.splitlines() if ln.startswith("evalkit weights status: "
                                                                   "error: "))
    assert f"{w.name} at {bad} has sha256 " in err and "(corrupt, truncated" in err
    assert f"fix: delete {bad} and run 'evalkit weights fetch alexnet'" in err
    r = CliRunner().invoke(cli, ["weights", "status", "--format", "json"])
    assert r.exit_code == 1
    row = {f["key"]: f for f in json.loads(r.output)["files"]}["alexnet"]
    assert row["state"] == "bad-hash" and "expected" in row["problem"]
    assert row["fix"].startswith(f"delete {bad}")

    bad.write_bytes(b"alex")
    assert CliRunner().invoke(cli, ["weights", "status"]).exit_code == 0

    def denied(path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(W, "cached_sha256", denied)  # chmod 0 would not stop root
    r = CliRunner().invoke(cli, ["weights", "status"])
    assert r.exit_code == 1, r.output
    assert f"{w.name} at {bad} cannot be read: Permission denied" in r.output
    assert "chmod a+r" in r.output


def test_status_formats_and_output_file(dirs, tmp_path):
    import csv

    r = CliRunner().invoke(cli, ["weights", "status", "--format", "csv"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.output)))
    assert list(rows[0])[:3] == ["key", "name", "state"]
    assert {x["key"]: x["state"] for x in rows}["inception"] == "missing"
    assert json.loads(rows[0]["used_by"]) == ["fid", "kid"]
    as_json = CliRunner().invoke(cli, ["weights", "status", "--json"]).output
    assert json.loads(as_json) == json.loads(
        CliRunner().invoke(cli, ["weights", "status", "--format", "json"]).output)
    dest = tmp_path / "w" / "status.json"
    r = CliRunner().invoke(cli, ["weights", "status", "--format", "json", "-o", str(dest)])
    assert r.exit_code == 0 and f"wrote weights status {dest}" in r.output
    assert json.loads(dest.read_text())["files"][0]["key"] == "inception"
