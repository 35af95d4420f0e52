"""The HTML report: structure, images as local files, escaping of names and metadata.

The evaluation folder is written through :class:`evalkit.store.results.Store` and the output cache
directly (no generator runs), with hostile sample names and dataset metadata.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evalkit.execute.generate import OutputCache
from evalkit.inputs.data.pairs import load_pairs
from evalkit.measure.base import MetricValue
from evalkit.measure.stats import summarize
from evalkit.store.results import Store
from tests.conftest import make_ab_folder

EVIL_NAME = "<img src=x onerror=alert(1)>"
EVIL_META = "<script>alert('meta')</script>"
SIZE = 32


def make_out(root: Path) -> Path:
    """An evaluation folder: 3 evaluated checkpoints + 1 failed, a held-out dataset whose
    first sample file is named like an HTML tag, metadata with a script tag, a skipped
    metric whose reason holds markup, and a biased-flagged set-level metric."""
    heldout = make_ab_folder(root / "heldout", n=5, half=SIZE)
    (heldout / "pair_00.png").rename(heldout / f"{EVIL_NAME}.png")
    ds = load_pairs(heldout, size=SIZE)
    assert f"{EVIL_NAME}.png" in ds.ids  # sample ids keep the extension (issue 11)
    ds.meta["note"] = EVIL_META
    out = root / "out"
    cache = OutputCache(out)
    rng = np.random.default_rng(0)
    with Store(out) as store:
        run_id = store.start_run(str(root / "run"), ["evalkit", "run"], SIZE,
                                 {"limit": None})
        store.put_dataset(ds)
        for k in (1, 2, 3):
            name = f"ckpt-{k}"
            outputs = rng.integers(0, 255, (len(ds), SIZE, SIZE, 3)).astype(np.uint8)
            l1 = rng.uniform(0.1, 0.5, len(ds)) - 0.05 * k
            chash = f"{k:064x}"
            folder = cache.save(chash, ds, outputs, l1)
            values = [summarize("l1", l1), summarize("ssim", rng.uniform(0.2, 0.6, len(ds))),
                      MetricValue("kid", 0.01 * k, n=len(ds), ci_low=0.0, ci_high=0.03 * k,
                                  flags={"biased_small_n": True, "extractor": "test-net"}),
                      MetricValue.skipped("lpips", "weights <b>missing</b>: run evalkit weights")]
            store.put_checkpoint(name, k, chash, str(root / "run" / name), "ok")
            store.put_evaluation(name, ds.name, chash, ds.content_hash, run_id,
                                 str(folder.relative_to(out)), values, ds.ids)
        store.put_checkpoint("ckpt-4", 4, None, str(root / "run" / "ckpt-4"), "failed",
                             "data shard <ckpt-4.data> is truncated")
        store.finish_run(run_id)
    return out


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[str] = []
        self.links: list[str] = []
        self.scripts: list[dict] = []
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        if tag in ("a", "link"):
            self.links.append(a.get("href", ""))
        if tag == "script":
            self.scripts.append(a)


def _parse(path: Path) -> _Collect:
    p = _Collect()
    p.feed(path.read_text(encoding="utf-8"))
    return p


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from evalkit.present.report import render_report

    root = tmp_path_factory.mktemp("report")
    out = make_out(root)
    index = render_report(out)
    return out, index


def test_report_folder_and_pages(report):
    out, index = report
    assert index == out / "report" / "index.html"
    pages = sorted(p.name for p in (out / "report").glob("c*.html"))
    assert pages == ["c0.html", "c1.html", "c2.html", "c3.html"]
    html = index.read_text()
    # ranking table: one row per checkpoint, the failed one with its (escaped) error
    table = html[html.index('id="ranking-table"'):html.index("</table>", html.index(
        'id="ranking-table"'))]
    assert len(re.findall(r"<tr[ >]", table)) == 1 + 4  # header + 4 checkpoints
    assert "data shard &lt;ckpt-4.data&gt; is truncated" in table
    # head-to-head wins column: "k/2" for each of the 3 participants
    assert len(re.findall(r'data-v="\d+">\d/2</td>', table)) == 3
    # a metric skipped for every checkpoint is said once, with its (escaped) reason, not
    # as a column of skipped cells; flags as badges, provenance
    said = html[html.index('id="unmeasured"'):html.index("</div>", html.index('id="unmeasured"'))]
    assert "<b>lpips</b>" in said and "weights &lt;b&gt;missing&lt;/b&gt;" in said
    assert "lpips" not in table
    assert "biased: small n" in table
    assert "extractor: test-net" in html
    # the best value per column is highlighted: the lowest l1 belongs to ckpt-3 here
    assert table.count('class="num best"') >= 2
    assert "Selected checkpoint" in html and "OUT/selection.json" in html


def test_every_image_is_a_local_file_and_nothing_external(report):
    out, index = report
    for page in (out / "report").glob("*.html"):
        p = _parse(page)
        assert bool(p.imgs) == (page.name != "c3.html"), page  # c3: the failed checkpoint
        for src in p.imgs:
            assert not re.match(r"^(https?:)?//", src), src
            assert (page.parent / src).is_file(), (page.name, src)
            assert Path(src).parts[0] == "img"
        for href in p.links:
            assert not re.match(r"^(https?:)?//", href), href
        assert all("src" not in s for s in p.scripts)  # inline only
        text = page.read_text()
        assert "http://" not in text and "https://" not in text
        assert "Content-Security-Policy" in text


def test_grids_show_inputs_targets_and_each_checkpoint(report):
    out, index = report
    html = index.read_text()
    for view in ("best", "worst", "random"):
        assert f'id="grid-0-{view}"' in html
    grid = html[html.index('id="grid-0-best"'):html.index('id="grid-0-worst"')]
    p = _Collect()
    p.feed(grid)
    srcs = p.imgs
    assert any("/in/" in s for s in srcs) and any("/tg/" in s for s in srcs)
    for j in range(3):
        assert any(f"/c{j}/" in s for s in srcs)
    # "best" rows come in order of the selected checkpoint's per-sample l1 (lower first)
    vals = [float(v) for v in re.findall(r'class="val">l1 ([0-9.]+)', grid)]
    sel = json.loads(json.dumps(re.findall(r"<b>(ckpt-\d)</b>", html)))[0]
    cols = 3
    mine = vals[["ckpt-1", "ckpt-2", "ckpt-3"].index(sel)::cols]
    assert mine == sorted(mine) and len(mine) == 5
    # images are the cached outputs (hard links or copies), byte for byte
    with Store(out, create=False) as store:
        ev = store.evaluations()
    folder = out / ev[ev.checkpoint == "ckpt-1"].outputs_dir.iloc[0]
    manifest = json.loads((folder / "manifest.json").read_text())
    linked = out / "report" / "img" / "d0" / "c0" / "00000.png"
    assert linked.read_bytes() == (folder / manifest["files"][0]).read_bytes()
    # the served input is what the model saw
    shown = np.asarray(Image.open(out / "report" / "img" / "d0" / "in" / "00000.png"))
    ds = load_pairs(out.parent / "heldout", size=SIZE)
    assert np.array_equal(shown, ds.input_uint8()[0])


def test_html_in_file_names_and_metadata_is_escaped(report):
    out, _ = report
    for page in (out / "report").glob("*.html"):
        text = page.read_text()
        assert EVIL_NAME not in text
        assert "<script>alert" not in text
        assert "onerror=alert" not in [a.get("onerror") for _, a in _parse(page).tags]
        assert all("onerror" not in a for _, a in _parse(page).tags)
    index = (out / "report" / "index.html").read_text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in index
    assert "&lt;script&gt;alert(&#39;meta&#39;)&lt;/script&gt;" in index


def test_plots_exist_for_each_metric(report):
    out, _ = report
    plots = sorted(p.name for p in (out / "report" / "img" / "plots").glob("*.png"))
    assert plots == ["metric_kid.png", "metric_l1.png", "metric_ssim.png"]
    with Image.open(out / "report" / "img" / "plots" / "metric_l1.png") as im:
        assert im.size[0] > 300 and im.size[1] > 200


def test_rerender_replaces_the_folder_and_cli(report):
    from click.testing import CliRunner

    from evalkit.cli import cli

    out, index = report
    stale = out / "report" / "img" / "stale.png"
    stale.write_bytes(b"x")
    r = CliRunner().invoke(cli, ["report", str(out)])
    assert r.exit_code == 0, r.output
    assert str(index) in r.output and not stale.exists()
    r = CliRunner().invoke(cli, ["report", str(out.parent / "missing")])
    assert r.exit_code == 2 and "no results" in r.output


def test_inputs_note_when_dataset_changed(tmp_path):
    from evalkit.present.report import render_report

    out = make_out(tmp_path)
    make_ab_folder(tmp_path / "heldout", n=5, half=SIZE, seed=9)  # overwrite pair_01..04
    html = render_report(out).read_text()
    assert "changed since they were evaluated" in html
    assert "/in/" not in html  # no input shown that the outputs were not made from


def test_each_checkpoint_has_one_colour_everywhere(report):
    """Issue 24 part 4: the ranking table, head-to-head matrix, grid headers, colour key
    and the plots draw a checkpoint in the same colour (by step order in the domain)."""
    from evalkit.present.report.colors import PALETTE, checkpoint_colors

    out, index = report
    html = index.read_text()
    seen: dict[str, set[str]] = {}
    for name, colour in re.findall(r'class="chip" data-ck="([^"]+)" style="background:'
                                   r'(#[0-9a-f]{6})"', html):
        seen.setdefault(name, set()).add(colour)
    want = checkpoint_colors([("ckpt-1", 1), ("ckpt-2", 2), ("ckpt-3", 3), ("ckpt-4", 4)])
    assert want["ckpt-1"] == PALETTE[0] and want["ckpt-3"] == PALETTE[2]
    assert {n: c for n, c in want.items() if n in seen} == \
        {n: next(iter(c)) for n, c in seen.items()}
    assert all(len(c) == 1 for c in seen.values()) and {"ckpt-1", "ckpt-2", "ckpt-3"} <= set(seen)
    for place in ('id="h2h-table"', 'id="ranking-table"', 'id="color-key"', 'class="grid"'):
        part = html[html.index(place):]
        assert f'data-ck="ckpt-2" style="background:{want["ckpt-2"]}"' in \
            part[:part.index("</table>") if "table" in place else part.index("</p>")], place
    with Image.open(out / "report" / "img" / "plots" / "metric_l1.png") as im:
        px = np.asarray(im.convert("RGB")).reshape(-1, 3)
    for name in ("ckpt-1", "ckpt-2", "ckpt-3"):
        rgb = tuple(int(want[name][i:i + 2], 16) for i in (1, 3, 5))
        assert (px == rgb).all(axis=1).sum() >= 6, name


def test_metric_panels_share_the_step_axis(tmp_path, monkeypatch):
    import pandas as pd

    from evalkit.present.report import plots

    made = []
    real = plots._figure
    monkeypatch.setattr(plots, "_figure", lambda *a, **k: made.append(real(*a, **k)) or made[-1])
    rows = [{"checkpoint": f"c{s}", "step": s, "dataset": "heldout", "metric": m,
             "value": 0.1 * s, "ci_low": 0.0, "ci_high": 1.0, "n": 4, "status": "ok"}
            for m, steps in (("l1", [2, 4, 6]), ("ssim", [4, 6]), ("kid", [6])) for s in steps]
    out = plots.metric_plots(pd.DataFrame(rows), tmp_path, {}, selected_step=6)
    assert [o["metric"] for o in out] == ["l1", "ssim", "kid"]  # the report's metric order
    limits = {tuple(f.axes[0].get_xlim()) for f in made}
    assert limits == {(1.5, 6.5)}  # every panel spans every step, even with fewer points
    assert [list(f.axes[0].get_xticks()) for f in made] == [[2, 4, 6]] * 3
    assert [f.axes[0].get_legend() is not None for f in made] == [True, False, False]


def test_stamp_covers_the_previous_selection(report):
    from evalkit.present.report.stamp import fingerprint

    out, _ = report
    before = fingerprint(out)
    prev = out / "selection.previous.json"
    prev.write_text("{}")
    try:
        assert fingerprint(out) != before
    finally:
        prev.unlink()
