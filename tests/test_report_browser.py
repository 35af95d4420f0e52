"""The report in a real browser: headless Chromium (Debian's ``chromium`` package).

For each page, a copy with a small instrumentation script injected at the top of
``<head>`` is loaded with ``--dump-dom``: the script records console errors, uncaught
exceptions, failed resource loads, CSP violations and ``alert`` calls from the start, and
on ``load`` checks that every image decoded (``complete && naturalWidth > 0``), clicks
sortable headers of the ranking table and reads the order back, then writes its findings
as JSON into the DOM, which Chromium prints. A screenshot of the real page is saved too
(``$EVALKIT_SCREENSHOT_DIR`` or the test's tmp folder). Skipped, saying why, when no
``chromium`` is installed (CI installs it: ``apt-get install -y chromium``).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.test_report import EVIL_META, EVIL_NAME, make_out

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium not installed (Debian: apt-get install -y "
                             "chromium); the report's browser test needs it")

PROBE = r"""<script>
(function () {
  var errors = [];
  window.__probeErrors = errors;
  var oe = console.error;
  console.error = function () {
    errors.push("console.error: " + Array.prototype.join.call(arguments, " "));
    return oe.apply(console, arguments);
  };
  window.alert = function (m) { errors.push("alert: " + m); };
  window.addEventListener("error", function (e) {
    var t = e.target;
    if (t && t !== window && (t.src || t.href)) errors.push("failed to load: " + (t.src || t.href));
    else errors.push("uncaught: " + e.message);
  }, true);
  window.addEventListener("unhandledrejection", function (e) { errors.push("rejection: " + e.reason); });
  document.addEventListener("securitypolicyviolation", function (e) {
    errors.push("CSP: " + e.violatedDirective + " " + e.blockedURI);
  });
  function column(table, label) {
    var cells = table.tHead.rows[0].cells;
    for (var i = 0; i < cells.length; i++) if (cells[i].textContent.trim().indexOf(label) === 0) return cells[i];
    return null;
  }
  function read(table, col) {
    return Array.prototype.map.call(table.tBodies[0].rows, function (r) {
      return r.dataset.excluded ? "excluded" : (r.cells[col].dataset.v || "");
    });
  }
  window.addEventListener("load", function () {
    var out = {errors: errors, images: 0, broken: [], sort: null, external: []};
    try {
      var imgs = Array.prototype.slice.call(document.images);
      out.images = imgs.length;
      out.broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                       .map(function (i) { return i.getAttribute("src"); });
      out.external = performance.getEntriesByType("resource").map(function (e) { return e.name; })
                       .filter(function (n) { return n.indexOf("file:") !== 0 && n.indexOf("data:") !== 0; });
      var table = document.getElementById("ranking-table");
      if (table) {
        var step = column(table, "step"), score = column(table, "score");
        step.click(); var stepAsc = read(table, step.cellIndex);
        step.click(); var stepDesc = read(table, step.cellIndex);
        score.click(); var scoreAsc = read(table, score.cellIndex);
        var names = Array.prototype.map.call(table.tBodies[0].rows, function (r) { return r.cells[1].textContent.trim(); });
        out.sort = {stepAsc: stepAsc, stepDesc: stepDesc, scoreAsc: scoreAsc, names: names,
                    aria: score.getAttribute("aria-sort")};
        var views = document.querySelector(".views button[data-view$='-worst']");
        if (views) { views.click(); out.worstShown = !document.getElementById(views.dataset.view).hidden; }
      }
    } catch (e) { errors.push("probe: " + e); }
    var pre = document.createElement("pre");
    pre.id = "__probe";
    pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
  });
})();
</script>"""

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-default-apps", "--hide-scrollbars"]


def _chromium(args: list[str], user_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={user_dir}", *args],
                          capture_output=True, text=True, timeout=120)


def probe_page(page: Path, user_dir: Path) -> dict:
    """Load ``page`` (through an instrumented copy beside it) and return the findings."""
    text = page.read_text(encoding="utf-8")
    assert "<head>" in text
    probe = page.with_name("__probe_" + page.name)
    probe.write_text(text.replace("<head>", "<head>\n" + PROBE, 1), encoding="utf-8")
    try:
        r = _chromium(["--virtual-time-budget=10000", "--dump-dom", probe.as_uri()], user_dir)
    finally:
        probe.unlink()
    m = re.search(r'<pre id="__probe">(.*?)</pre>', r.stdout, re.S)
    assert m, f"no probe result from Chromium (rc {r.returncode}): {r.stderr[-2000:]}"
    return json.loads(html.unescape(m.group(1)))


def screenshot(page: Path, dest: Path, user_dir: Path, height: int = 2400) -> Path:
    r = _chromium([f"--window-size=1400,{height}", f"--screenshot={dest}", page.as_uri()],
                  user_dir)
    assert dest.is_file(), f"no screenshot (rc {r.returncode}): {r.stderr[-2000:]}"
    return dest


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    from evalkit.present.report import render_report

    root = tmp_path_factory.mktemp("browser")
    out = make_out(root)
    return root, render_report(out)


def test_index_renders_without_errors_all_images_load_and_sorting_works(rendered):
    root, index = rendered
    found = probe_page(index, root / "chromium-profile")
    assert found["errors"] == []  # includes: no alert() from the hostile file name
    assert found["external"] == []
    assert found["images"] >= 20 and found["broken"] == []
    s = found["sort"]
    steps = [float(v) for v in s["stepAsc"] if v != "excluded"]
    assert steps == sorted(steps) and len(steps) == 3
    assert [float(v) for v in s["stepDesc"] if v != "excluded"] == sorted(steps, reverse=True)
    assert s["stepAsc"][-1] == s["stepDesc"][-1] == "excluded"  # failed rows stay last
    scores = [float(v) for v in s["scoreAsc"] if v != "excluded"]
    assert scores == sorted(scores) and s["aria"] == "ascending"
    assert found["worstShown"] is True


def test_checkpoint_page_renders_and_images_load(rendered):
    root, index = rendered
    found = probe_page(index.parent / "c0.html", root / "chromium-profile")
    assert found["errors"] == [] and found["broken"] == [] and found["images"] >= 10


def test_hostile_names_show_as_text_in_the_browser(rendered):
    root, index = rendered
    r = _chromium(["--virtual-time-budget=5000", "--dump-dom", index.as_uri()],
                  root / "chromium-profile")
    dom = r.stdout
    # what the browser built: the names are text nodes (escaped again when serialized)
    assert html.escape(EVIL_NAME, quote=False) in dom
    assert html.escape(EVIL_META, quote=False) in dom
    assert 'src="x"' not in dom and "<script>alert" not in dom


def test_screenshot_of_the_report(rendered):
    root, index = rendered
    dest_dir = Path(os.environ.get("EVALKIT_SCREENSHOT_DIR", root))
    dest_dir.mkdir(parents=True, exist_ok=True)
    shot = screenshot(index, dest_dir / "report-index.png", root / "chromium-profile")
    with Image.open(shot) as im:
        arr = np.asarray(im.convert("RGB"))
    assert arr.shape[1] == 1400
    assert arr.std() > 10  # a rendered page, not a blank one
