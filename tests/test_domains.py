"""Domains (issue 10): a root of domain folders is evaluated per domain and never pooled;
selection, export, gate and results per domain; ambiguous runs are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from evalkit.cli import cli
from evalkit.store.results import Store
from tests.conftest import make_ab_folder

SIZE = 32
DOMAINS = ("car", "shoe")


def _sketch_set(root: Path, per_domain: int = 3, domains=DOMAINS,
                provenance: str = "test strokes") -> Path:
    """A multi-domain sketch set (default: car and shoe) with a manifest (simple strokes,
    different per domain); benchmarks/bench_report.py uses it too."""
    entries = []
    rng = np.random.default_rng(7)
    for d in domains:
        (root / d).mkdir(parents=True, exist_ok=True)
        for i in range(per_domain):
            a = np.full((48, 48), 255, np.uint8)
            r, c = rng.integers(8, 40, 2)
            a[r, 4:44] = 0
            a[4:44, c] = 0
            Image.fromarray(a).save(root / d / f"{d}_{i}.png")
            entries.append({"file": f"{d}/{d}_{i}.png", "domain": d,
                            "provenance": provenance})
    (root / "manifest.json").write_text(json.dumps({"schema": "evalkit.sketches/1",
                                                    "sketches": entries}))
    return root


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Path:
    """The seed's layout: checkpoints/<domain>/ckpt-N, heldout/<domain>/, one sketch set."""
    from tests.seed_reference import save_seed_checkpoint

    base = tmp_path_factory.mktemp("service")
    for k, d in enumerate(DOMAINS):
        (base / "checkpoints" / d).mkdir(parents=True)
        save_seed_checkpoint(base / "checkpoints" / d, n=2 + k, hidden=4, seed=10 * k)
        make_ab_folder(base / "heldout" / d, n=4 + k, half=SIZE, seed=k)
    _sketch_set(base / "sketches")
    return base


def run_cli(*args) -> object:
    return CliRunner().invoke(cli, ["run", *map(str, args), "--image-size", str(SIZE),
                                    "--quiet", "--no-report"], catch_exceptions=False)


@pytest.fixture(scope="module")
def evaluated(service, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out") / "out"
    r = run_cli(service / "checkpoints", "--heldout", service / "heldout", "--sketches",
                service / "sketches", "--out", out)
    assert r.exit_code == 0, r.output
    return out


def test_root_is_evaluated_per_domain_and_no_value_mixes_domains(service, evaluated):
    with Store(evaluated, create=False) as store:
        datasets = store.datasets()
        ckpts = store.checkpoints()
        evals = store.evaluations()
        samples = store.conn.execute("SELECT dataset, sample_id FROM samples").fetchall()
        res = store.results()
    assert set(datasets.name) == {"heldout/car", "heldout/shoe", "sketches/car",
                                  "sketches/shoe"}
    assert dict(zip(datasets.name, datasets.domain, strict=True)) == {
        "heldout/car": "car", "heldout/shoe": "shoe", "sketches/car": "car",
        "sketches/shoe": "shoe"}
    assert sorted(ckpts.name) == ["car/ckpt-1", "car/ckpt-2", "shoe/ckpt-1", "shoe/ckpt-2",
                                  "shoe/ckpt-3"]
    ck_domain = dict(zip(ckpts.name, ckpts.domain, strict=True))
    ds_domain = dict(zip(datasets.name, datasets.domain, strict=True))
    # every evaluation pairs a checkpoint with a dataset of its own domain
    for e in evals.itertuples():
        assert ck_domain[e.checkpoint] == ds_domain[e.dataset], (e.checkpoint, e.dataset)
    assert len(evals) == 2 * 2 + 3 * 2
    # every stored sample belongs to its dataset's domain
    meta = {r.name: json.loads(r.meta) for r in datasets.itertuples()}
    manifest = {e["file"]: e["domain"] for e in
                json.loads((service / "sketches" / "manifest.json").read_text())["sketches"]}
    for ds, sid in samples:
        d = ds_domain[ds]
        if ds.startswith("sketches/"):
            files = [f for f in manifest if f == sid or Path(f).with_suffix("").as_posix() == sid]
            assert files and all(manifest[f] == d for f in files), (ds, sid)
        else:
            root = Path(datasets.set_index("name").loc[ds, "root"])
            assert root == service / "heldout" / d
            assert any(p.stem == Path(sid).stem for p in root.iterdir()), (ds, sid)
    for name in ("sketches/car", "sketches/shoe"):
        assert {e["domain"] for e in meta[name]["entries"]} == {ds_domain[name]}
    assert set(res.domain) == {"car", "shoe"}
    # held-out n per domain: 4 car pairs, 5 shoe pairs
    n = res[(res.metric == "l1") & (res.kind == "heldout")].groupby("dataset").n.max().to_dict()
    assert n == {"heldout/car": 4, "heldout/shoe": 5}


def test_one_domain_folder_with_multi_domain_sketches_and_no_domain_exits_2(service,
                                                                            tmp_path):
    r = run_cli(service / "checkpoints" / "car", "--sketches", service / "sketches",
                "--out", tmp_path / "o")
    # a folder named after a known domain is that domain: no error
    assert r.exit_code == 0, r.output
    anon = tmp_path / "mystery"
    shutil.copytree(service / "checkpoints" / "car", anon)
    r = CliRunner().invoke(cli, ["run", str(anon), "--sketches", str(service / "sketches"),
                                 "--out", str(tmp_path / "o2"), "--image-size", str(SIZE),
                                 "--quiet", "--no-report"])
    assert r.exit_code == 2
    assert "car, shoe" in r.output and "--domain" in r.output
    assert not (tmp_path / "o2" / "results.sqlite").exists()


def test_domains_evaluated_one_by_one_into_one_out_are_both_kept(service, tmp_path):
    out = tmp_path / "out"
    for d in DOMAINS:
        anon = tmp_path / f"run-{d}"
        shutil.copytree(service / "checkpoints" / d, anon)
        r = run_cli(anon, "--domain", d, "--heldout", service / "heldout" / d, "--sketches",
                    service / "sketches", "--out", out)
        assert r.exit_code == 0, r.output
    with Store(out, create=False) as store:
        res = store.results()
    assert set(res.dataset) == {"heldout/car", "heldout/shoe", "sketches/car",
                                "sketches/shoe"}
    assert {c.split("/")[0] for c in res.checkpoint} == {"car", "shoe"}


def test_pooling_only_when_asked_and_labelled(service, tmp_path):
    r = run_cli(service / "checkpoints" / "car", "--domain", "all", "--sketches",
                service / "sketches", "--out", tmp_path / "o")
    assert r.exit_code == 0, r.output
    assert "pooled" in r.output
    with Store(tmp_path / "o", create=False) as store:
        ds = store.datasets()
    assert list(ds.name) == ["sketches/all"] and list(ds.n) == [6]


def test_select_exports_one_seed_layout_folder_per_domain(service, evaluated, tmp_path):
    from evalkit.core.tf import tf
    from evalkit.inputs.data.pairs import load_pairs
    from tests.seed_reference import SeedLikeGenerator, serve_output

    r = CliRunner().invoke(cli, ["select", str(evaluated), "--export", str(tmp_path / "x")])
    assert r.exit_code == 0, r.output
    sel = json.loads((evaluated / "selection.json").read_text())
    assert set(sel["domains"]) == {"car", "shoe"}
    with Store(evaluated, create=False) as store:
        ev = store.evaluations()
    for d in DOMAINS:
        entry = sel["domains"][d]
        assert entry["checkpoint"].startswith(f"{d}/") and entry["domain"] == d
        assert f"[{d}]" in r.output
        dest = tmp_path / "x" / d
        assert tf.train.latest_checkpoint(str(dest)) == str(dest / "ckpt-1")
        g = SeedLikeGenerator(hidden=4, seed=99)
        tf.train.Checkpoint(generator=g).restore(str(dest / "ckpt-1")) \
            .assert_existing_objects_matched()
        ds = load_pairs(service / "heldout" / d, size=SIZE)
        served = serve_output(g(ds.inputs).numpy())
        row = ev[(ev.checkpoint == entry["checkpoint"]) & (ev.dataset == f"heldout/{d}")]
        folder = evaluated / row.outputs_dir.iloc[0]
        manifest = json.loads((folder / "manifest.json").read_text())
        cached = np.stack([np.asarray(Image.open(folder / f).convert("RGB"))
                           for f in manifest["files"]])
        # The same weights: equal up to float rounding at the uint8 truncation (eager vs
        # traced, batch 5 vs 4: oneDNN's AVX-512 kernels may round differently); other
        # weights differ by tens of levels almost everywhere.
        diff = np.abs(served.astype(int) - cached.astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_gate_fails_naming_the_domain_whose_rule_fails(evaluated, tmp_path):
    with Store(evaluated, create=False) as store:
        res = store.results()
    car_l1 = res[(res.dataset == "heldout/car") & (res.metric == "l1")].value.max()
    cfg = tmp_path / "evalkit.toml"
    cfg.write_text(f"""
[[gate.rules]]
dataset = "heldout"
metric = "l1"
max = 5.0

[[gate.rules]]
domain = "car"
dataset = "heldout"
metric = "ssim"
min = 2.0

[[gate.rules]]
dataset = "heldout/shoe"
metric = "l1"
max = {car_l1 + 5:.3f}
""")
    r = CliRunner().invoke(cli, ["gate", str(evaluated), "--config", str(cfg),
                                 "--json", str(tmp_path / "g.json"),
                                 "--junit", str(tmp_path / "g.xml")])
    assert r.exit_code == 1, r.output
    assert "failed: car" in r.output and "1 of 2 domains passed" in r.output
    g = json.loads((tmp_path / "g.json").read_text())
    assert g["failed_domains"] == ["car"]
    assert g["domains"]["shoe"]["passed"] and not g["domains"]["car"]["passed"]
    assert g["domains"]["car"]["checkpoint"]["name"] == "car/ckpt-2"
    # the gate checks what is released: selection.json's pick when an earlier test ran
    # `select` (which one depends on [ranking] track_weights), else the newest
    sel = evaluated / "selection.json"
    shoe = (json.loads(sel.read_text())["domains"]["shoe"]["checkpoint"] if sel.is_file()
            else "shoe/ckpt-3")
    assert g["domains"]["shoe"]["checkpoint"]["name"] == shoe
    assert [x["dataset"] for x in g["domains"]["shoe"]["rules"]] == ["heldout/shoe"] * 2
    xml = (tmp_path / "g.xml").read_text()
    assert 'name="evalkit gate [car]"' in xml and 'name="evalkit gate [shoe]"' in xml


def test_gate_fails_when_the_newest_discovered_checkpoint_failed(service, tmp_path):
    root = tmp_path / "checkpoints"
    shutil.copytree(service / "checkpoints", root)
    # break car's newest checkpoint: its shard is truncated
    shard = root / "car" / "ckpt-2.data-00000-of-00001"
    shard.write_bytes(shard.read_bytes()[:100])
    out = tmp_path / "out"
    r = run_cli(root, "--heldout", service / "heldout", "--out", out)
    assert r.exit_code == 1
    cfg = tmp_path / "evalkit.toml"
    cfg.write_text('[[gate.rules]]\ndataset = "heldout"\nmetric = "l1"\nmax = 5.0\n')
    r = CliRunner().invoke(cli, ["gate", str(out), "--config", str(cfg)])
    assert r.exit_code == 1, r.output
    assert "car/ckpt-2" in r.output and "failed to evaluate" in r.output
    # an explicit older checkpoint of car (and shoe's newest) can pass
    r = CliRunner().invoke(cli, ["gate", str(out), "--config", str(cfg), "--checkpoint",
                                 "car/ckpt-1", "--checkpoint", "shoe/ckpt-3"])
    assert r.exit_code == 0, r.output


def test_results_have_a_domain_column(evaluated):
    r = CliRunner().invoke(cli, ["results", str(evaluated), "--format", "csv"])
    assert r.exit_code == 0
    header = r.output.splitlines()[0].split(",")
    assert header[:4] == ["checkpoint", "step", "domain", "dataset"]


def test_report_opens_on_a_domain_overview_with_a_report_per_domain(evaluated, tmp_path):
    from evalkit.decide.selection import select
    from evalkit.present.report import render_report

    sel = select(evaluated, write=False)
    index = render_report(evaluated)
    html = index.read_text()
    for d in DOMAINS:
        assert f'href="{d}/index.html"' in html
        assert sel["domains"][d]["checkpoint"] in html
        page = (index.parent / d / "index.html").read_text()
        assert f"Domain <b>{d}</b>" in page
        other = [o for o in DOMAINS if o != d][0]
        assert f"heldout/{other}" not in page and f"{other}/ckpt-" not in page
        assert any((index.parent / d / "img").rglob("*.png"))
    assert not list(evaluated.glob("report.tmp*")) and not list(evaluated.glob("report.old*"))


def test_domain_tables_in_config_point_a_domain_at_its_own_data(service, tmp_path):
    """[domains.<d>] heldout = ... overrides <heldout>/<d>/ for that domain only."""
    alt = make_ab_folder(tmp_path / "car_v2", n=2, half=SIZE, seed=5)
    cfg = tmp_path / "evalkit.toml"
    cfg.write_text(f'[run]\nheldout = "{service / "heldout"}"\n\n'
                   f'[domains.car]\nheldout = "{alt}"\n')
    out = tmp_path / "out"
    r = run_cli(service / "checkpoints", "--config", cfg, "--out", out)
    assert r.exit_code == 0, r.output
    with Store(out, create=False) as store:
        ds = store.datasets().set_index("name")
    assert Path(ds.loc["heldout/car", "root"]) == alt and ds.loc["heldout/car", "n"] == 2
    assert Path(ds.loc["heldout/shoe", "root"]) == service / "heldout" / "shoe"
    bad = tmp_path / "bad.toml"
    bad.write_text("[domains.car]\nheldot = 'x'\n")
    r = run_cli(service / "checkpoints", "--config", bad, "--out", tmp_path / "o2")
    assert r.exit_code == 2 and f"{bad}:2: unknown key 'heldot' in [domains.car]" in r.output


def test_the_seeds_real_checkpoint_layout_is_split_by_domain():
    """The seed's real checkpoints/ (8 domain folders, real index files) with the seed team's
    real sketches: car, person and shoe are planned with their own sketches; the five
    domains without data are listed, not evaluated, and nothing is pooled."""
    from evalkit.execute.domains import plan_domains
    from tests.conftest import shared_path

    ckpts = shared_path("seed", "checkpoints")
    sketches = shared_path("sketches", "real")
    plans = plan_domains(ckpts, heldout=None, sketches=sketches)
    assert [p.domain for p in plans] == ["car", "person", "shoe"]
    for p in plans:
        assert [r.name for r in p.refs] == [f"{p.domain}/ckpt-1"]
        assert p.sketches == sketches and p.heldout is None
    note = " ".join(plans[0].notes)
    for d in ("gemstone", "handbag", "maple_character", "panda", "space"):
        assert f"{d}/" in note
    assert "NOT evaluated" in note
    # one domain's real folder is that domain
    (car,) = plan_domains(ckpts / "car", heldout=None, sketches=sketches)
    assert car.domain == "car" and [r.name for r in car.refs] == ["car/ckpt-1"]


def test_overview_states_the_release_decision_per_domain(evaluated):
    """The overview answers "what do we deploy, and how sure?": per domain the pick and its
    step, P(first) with a stable/unstable mark, the runner-up with its head-to-head margin,
    and the headline metric of each track for both."""
    import re

    from evalkit.decide.selection import select
    from evalkit.present.report import render_report

    sel = select(evaluated, write=False)
    html = render_report(evaluated).read_text()
    assert "What to deploy, per domain" in html
    rows = re.findall(r"<tr class=\"[^\"]*\">(.*?)</tr>", html, flags=re.S)
    assert len(rows) == len(DOMAINS)
    for d, row in zip(sorted(DOMAINS), rows, strict=True):
        e = sel["domains"][d]
        assert f">{e['checkpoint']}</b>" in row and f"step {e['step']}" in row
        pf = e["stability"]["p_first"]
        assert f"<b>{100 * pf:.0f}%</b>" in row and f"width:{100 * pf:.0f}%" in row
        assert ("stable</span>" if e["stability"]["stable"] else "unstable</a>") in row
        ru = e["runner_up"]
        assert ru["checkpoint"] in row and f"({ru['margin']:+.2f})" in row
        assert "<b>heldout</b> l1:" in row and "<b>sketches</b>" in row


def _domain_ranking(out, domain):
    """One domain's ranking, ranked on that domain's results only (as select does)."""
    from evalkit.decide.ranking.rank import rank_checkpoints
    from evalkit.decide.ranking.rule import RankingConfig
    from evalkit.decide.selection import domain_frames

    with Store(out, create=False) as store:
        frames = domain_frames(domain, store.results(), store.checkpoints(),
                               store.sample_metrics())
    return rank_checkpoints(*frames, RankingConfig())


def test_domain_page_opens_with_the_verdict_then_head_to_head(evaluated):
    import re

    from evalkit.decide.selection import select, verdict
    from evalkit.present.report import render_report

    sel = select(evaluated, write=False)
    render_report(evaluated)
    for d in DOMAINS:
        page = (evaluated / "report" / d / "index.html").read_text()
        e = sel["domains"][d]
        v = verdict(e)
        assert v.startswith(f"{e['checkpoint']} is chosen: it beats ")
        assert f"<b>{v}</b>" in page
        # the decision comes before the provenance table and the full explanation is folded
        assert page.index(v) < page.index('id="h2h-table"') < page.index('id="about"')
        assert re.search(r"<details><summary[^>]*>Why, in full", page)
        # head-to-head cells: row beats column by the ranking's own margins
        table = page[page.index('id="h2h-table"'):page.index("</table>",
                                                            page.index('id="h2h-table"'))]
        cells = re.findall(r'<td class="num" style="[^"]*">([^<]*)</td>', table)
        names = re.findall(r'<th class="mono" title="([^"]+)">', table)[:len(e["ranking"])]
        assert names[0] == e["checkpoint"]
        k = len(names)
        assert len(cells) == k * k
        margins = _domain_ranking(evaluated, d).margins
        for i, a in enumerate(names):
            for j, b in enumerate(names):
                c = cells[i * k + j]
                if i == j:
                    assert c == ""
                else:
                    m = float(margins.loc[a, b])
                    assert c == ("tie" if abs(m) < 1e-9 else f"{m:+.2f}")
