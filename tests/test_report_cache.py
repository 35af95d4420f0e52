"""The report re-draws only what changed (issue 25 part 2): plots and grid images are
reused from the previous report under a key of the content they show, and a report
rendered incrementally is the same, file for file, as one rendered from scratch."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from evalkit.cli import cli
from evalkit.present.report import cache as rcache
from evalkit.present.report import grids, plots
from evalkit.present.report.build import render_report
from tests.conftest import make_ab_folder
from tests.test_domains import _sketch_set

SIZE = 32
DOMAINS = ("car", "shoe")


def _run(service: Path, out: Path) -> None:
    r = CliRunner().invoke(cli, ["run", str(service / "checkpoints"), "--heldout",
                                 str(service / "heldout"), "--sketches",
                                 str(service / "sketches"), "--image-size", str(SIZE),
                                 "--out", str(out), "--quiet", "--no-report"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> dict[str, Path]:
    """Two domains evaluated twice: ``before`` (car: ckpt-1..2, shoe: ckpt-1..2) and
    ``after``, a copy of it where car/ckpt-3 was added and evaluated."""
    from tests.seed_reference import save_seed_checkpoint

    base = tmp_path_factory.mktemp("rcache")
    spare = base / "spare"
    spare.mkdir()
    save_seed_checkpoint(spare, n=3, hidden=4, seed=0)
    for k, d in enumerate(DOMAINS):
        folder = base / "service" / "checkpoints" / d
        folder.mkdir(parents=True)
        for f in spare.glob("ckpt-[12].*"):
            shutil.copy2(f, folder / f.name)
        make_ab_folder(base / "service" / "heldout" / d, n=4, half=SIZE, seed=k)
    _sketch_set(base / "service" / "sketches", per_domain=2)
    before, after = base / "before", base / "after"
    _run(base / "service", before)
    shutil.copytree(before, after)
    for f in spare.glob("ckpt-3.*"):
        shutil.copy2(f, base / "service" / "checkpoints" / "car" / f.name)
    _run(base / "service", after)
    return {"before": before, "after": after, "base": base}


@pytest.fixture
def counted(monkeypatch) -> dict[str, list]:
    """Records each drawing call: plot functions (with the domain's checkpoints) and grid
    PNG encodes."""
    calls: dict[str, list] = {"metric_plots": [], "mismatch_plots": [], "png": []}
    for name in ("metric_plots", "mismatch_plots"):
        real = getattr(plots, name)

        def wrapped(results, *a, _real=real, _name=name, **k):
            calls[_name].append(sorted(set(results["checkpoint"])))
            return _real(results, *a, **k)

        monkeypatch.setattr(plots, name, wrapped)
    real_png = grids.save_png
    monkeypatch.setattr(grids, "save_png",
                        lambda img, path: (calls["png"].append(path), real_png(img, path)))
    return calls


def _copy(evaluated: dict[str, Path], name: str, tmp_path: Path) -> Path:
    out = tmp_path / name
    shutil.copytree(evaluated[name], out)
    return out


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _dirs(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_dir())


def _same_tree(a: Path, b: Path) -> None:
    """Same folders, same files, same bytes."""
    assert _dirs(a) == _dirs(b)
    ta, tb = _tree(a), _tree(b)
    assert sorted(ta) == sorted(tb)
    differ = [k for k in ta if ta[k] != tb[k]]
    assert not differ, differ[:10]


def test_added_checkpoint_redraws_only_its_domain_and_equals_scratch(evaluated, tmp_path,
                                                                     counted):
    out = _copy(evaluated, "after", tmp_path)
    # the report as it was before car/ckpt-3 was added
    render_report(_copy(evaluated, "before", tmp_path))
    shutil.copytree(tmp_path / "before" / "report", out / "report")
    for v in counted.values():
        v.clear()
    render_report(out)
    # only the car domain (which now has ckpt-3) was drawn again; shoe's plots were reused
    assert counted["metric_plots"] == [["car/ckpt-1", "car/ckpt-2", "car/ckpt-3"]]
    assert counted["mismatch_plots"] == [["car/ckpt-1", "car/ckpt-2", "car/ckpt-3"]]
    assert counted["png"] == []  # the inputs and targets did not change: none encoded again
    # byte for byte what a render from scratch makes (same files, same HTML, same index)
    scratch = tmp_path / "scratch"
    render_report(out, dest=scratch)
    _same_tree(out / "report", scratch)
    assert (scratch / rcache.INDEX).is_file()


def test_unchanged_rerender_draws_nothing(evaluated, tmp_path, counted):
    out = _copy(evaluated, "after", tmp_path)
    render_report(out)
    assert len(counted["metric_plots"]) == 2 and counted["png"]  # from scratch: all drawn
    first = _tree(out / "report")
    for v in counted.values():
        v.clear()
    render_report(out)
    assert counted == {"metric_plots": [], "mismatch_plots": [], "png": []}
    assert _tree(out / "report") == first


def test_changed_value_redraws_that_domains_plots(evaluated, tmp_path, counted):
    out = _copy(evaluated, "after", tmp_path)
    render_report(out)
    plot = out / "report" / "shoe" / "img" / "plots" / "metric_l1.png"
    old = plot.read_bytes()
    with sqlite3.connect(out / "results.sqlite") as conn:
        conn.execute("UPDATE metrics SET value = value + 0.25 WHERE checkpoint = "
                     "'shoe/ckpt-2' AND metric = 'l1'")
    for v in counted.values():
        v.clear()
    render_report(out)
    assert counted["metric_plots"] == [["shoe/ckpt-1", "shoe/ckpt-2"]]
    assert plot.read_bytes() != old
    scratch = tmp_path / "scratch"
    render_report(out, dest=scratch)
    _same_tree(out / "report", scratch)


def test_a_cached_file_that_changed_is_drawn_again(evaluated, tmp_path, counted):
    out = _copy(evaluated, "after", tmp_path)
    render_report(out)
    plot = out / "report" / "car" / "img" / "plots" / "metric_l1.png"
    image = next((out / "report" / "car" / "img").glob("d*/in/00000.png"))
    good_plot, good_image = plot.read_bytes(), image.read_bytes()
    plot.write_bytes(b"not the plot")
    image.write_bytes(b"not the image")
    for v in counted.values():
        v.clear()
    render_report(out)
    assert counted["metric_plots"] == [["car/ckpt-1", "car/ckpt-2", "car/ckpt-3"]]
    assert [Path(p).as_posix().split("/report.tmp", 1)[1].split("/", 1)[1]
            for p in counted["png"]] == [image.relative_to(out / "report").as_posix()]
    assert plot.read_bytes() == good_plot and image.read_bytes() == good_image


def test_new_output_bytes_reach_the_grid(evaluated, tmp_path):
    """The grid shows each checkpoint's current outputs: re-evaluated weights under the
    same name give new images in the re-rendered report."""
    from tests.seed_reference import save_seed_checkpoint

    out = _copy(evaluated, "after", tmp_path)
    render_report(out)
    old = _tree(out / "report" / "shoe" / "img")
    service = tmp_path / "service"
    shutil.copytree(evaluated["base"] / "service", service)
    other = tmp_path / "other"
    other.mkdir()
    save_seed_checkpoint(other, n=2, hidden=4, seed=50)  # new weights for shoe/ckpt-2
    for f in other.glob("ckpt-2.*"):
        shutil.copy2(f, service / "checkpoints" / "shoe" / f.name)
    _run(service, out)
    render_report(out)
    new = _tree(out / "report" / "shoe" / "img")
    changed = [k for k in new if "/c" in k and k in old and new[k] != old[k]]
    assert changed  # the re-evaluated checkpoint's output cells
    scratch = tmp_path / "scratch"
    render_report(out, dest=scratch)
    _same_tree(out / "report", scratch)


def test_cache_keys_follow_content(tmp_path):
    import pandas as pd

    a = pd.DataFrame({"checkpoint": ["c1"], "value": [0.5], "run_id": [1],
                      "completed_at": ["t1"]})
    b = a.assign(run_id=[2], completed_at=["t2"])  # bookkeeping only: the same plot
    assert rcache.key("metric_plots", a, {"l1": "lower"}) == \
        rcache.key("metric_plots", b, {"l1": "lower"})
    assert rcache.key("metric_plots", a, {"l1": "lower"}) != \
        rcache.key("metric_plots", a.assign(value=[0.6]), {"l1": "lower"})
    assert rcache.key("metric_plots", a, 3) != rcache.key("metric_plots", a, 4)
    assert rcache.key("metric_plots", a) != rcache.key("mismatch_plots", a)
    # a value JSON would not give back unchanged is not cached
    c = rcache.ReportCache(None, tmp_path)
    (tmp_path / "f.png").write_bytes(b"x")
    c.put("k", tmp_path, ["f.png"], {"step": (1, 2)})
    assert c.entries == {}
    c.put("k", tmp_path, ["f.png"], {"step": [1, 2]})
    assert set(c.entries) == {"k"}


def test_the_old_folder_tree_is_recycled_emptied_and_links_are_not_followed(evaluated,
                                                                             tmp_path):
    out = _copy(evaluated, "after", tmp_path)
    render_report(out)
    render_report(out)
    kept = out / ".report.dirs"
    assert kept.is_dir() and _dirs(kept) == _dirs(out / "report")
    assert not [p for p in kept.rglob("*") if not p.is_dir()]  # folders only
    # something planted in the kept tree is not written through
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    plots_dir = kept / "car" / "img" / "plots"
    plots_dir.rmdir()
    plots_dir.symlink_to(elsewhere, target_is_directory=True)
    (kept / "car" / "stray.html").write_text("x")
    render_report(out)
    assert list(elsewhere.iterdir()) == []
    assert not (out / "report" / "car" / "img" / "plots").is_symlink()
    assert not (out / "report" / "car" / "stray.html").exists()
    scratch = tmp_path / "scratch"
    render_report(out, dest=scratch)
    _same_tree(out / "report", scratch)
    # a link (or a file) in the kept tree's place is not taken as the render folder
    shutil.rmtree(kept)
    kept.symlink_to(elsewhere, target_is_directory=True)
    render_report(out)
    assert list(elsewhere.iterdir()) == [] and (out / "report" / "index.html").is_file()
    _same_tree(out / "report", scratch)
