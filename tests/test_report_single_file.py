"""`evalkit report --single-file F`: the whole report as one HTML file that shows every image
and every domain with no other file present (checked in headless Chromium when installed)."""

from __future__ import annotations

import re
import shutil

import pytest
from click.testing import CliRunner

from evalkit.cli import cli
from tests.test_domains import DOMAINS, evaluated, service  # noqa: F401,F811  (fixtures)
from tests.test_report import make_out
from tests.test_report_browser import CHROMIUM, probe_page


def _check_self_contained(text: str) -> None:
    assert not re.findall(r'src="(?!data:)', text), "an image not embedded"
    local = [h for h in re.findall(r'href="([^"]*)"', text)
             if not h.startswith(("#", "http://", "https://", "mailto:"))]
    assert local == [], f"links to files the single file does not carry: {local[:5]}"
    ids = re.findall(r'\bid="([^"]+)"', text)
    assert len(ids) == len(set(ids)), "duplicate element ids"


def test_single_file_has_every_domain_as_a_section(evaluated, tmp_path):  # noqa: F811
    dest = tmp_path / "pr" / "report.html"
    r = CliRunner().invoke(cli, ["report", str(evaluated), "--single-file", str(dest)])
    assert r.exit_code == 0, r.output
    assert f"{dest} (" in r.output and "MB, one file)" in r.output
    text = dest.read_text()
    _check_self_contained(text)
    assert list(dest.parent.iterdir()) == [dest]
    for d in DOMAINS:
        assert f'<section id="domain-{d}">' in text and f'href="#domain-{d}"' in text
        assert f'id="{d}-h2h-table"' in text  # the domain page's parts, ids prefixed
    assert text.count('src="data:image/png;base64,') >= 10


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (Debian: "
                                             "apt-get install -y chromium)")
def test_single_file_opens_in_chromium_with_no_other_file(tmp_path):
    out = make_out(tmp_path / "made")
    dest = tmp_path / "alone" / "report.html"
    r = CliRunner().invoke(cli, ["report", str(out), "--single-file", str(dest)])
    assert r.exit_code == 0, r.output
    _check_self_contained(dest.read_text())
    shutil.rmtree(out / "report", ignore_errors=True)  # nothing to fall back on
    found = probe_page(dest, tmp_path / "chromium-profile")
    assert found["errors"] == [] and found["external"] == []
    assert found["images"] >= 20 and found["broken"] == []
