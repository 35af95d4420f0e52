"""``evalkit report --single-file F``: the report as one self-contained HTML file.

For a pull request or an MLflow run, where a folder of pages and images is awkward. The
rendered report folder is folded into its start page: every image becomes a ``data:`` URI
(the pages' Content-Security-Policy already allows ``data:`` images), each domain's page
becomes a section of the same file (links to it become links to the section), and links to
what the file does not carry (the per-checkpoint pages, the review page) are left as plain
text. No script or style is added; the file makes no request.

Why by hand: the input is our own templates' output (attributes always double-quoted), so
three regular expressions do the rewriting; an HTML parser would re-serialize the whole
page for no gain.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

_MAIN = re.compile(r"<main>(.*)</main>", re.S)
_SRC = re.compile(r'src="([^":#?]+)"')
_HREF = re.compile(r'href="([^"]*)"')
_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
          ".svg": "image/svg+xml", ".gif": "image/gif", ".webp": "image/webp"}


def _inline_images(html: str, base: Path) -> str:
    def sub(m: re.Match) -> str:
        path = (base / m.group(1)).resolve()
        mime = _TYPES.get(path.suffix.lower())
        if mime is None or not path.is_file():
            return m.group(0)
        return f'src="data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"'

    return _SRC.sub(sub, html)


def _links(html: str, domains: set[str], here: str | None) -> str:
    """Links inside the one file: a domain page -> its section, the overview -> the top,
    in-page anchors of a domain -> that domain's section; anything else local -> text."""
    def sub(m: re.Match) -> str:
        href = m.group(1)
        if href.startswith(("http://", "https://", "mailto:")):
            return m.group(0)
        page, _, frag = href.partition("#")
        if page == "" and frag:
            return f'href="#{_anchor(here, frag)}"' if here else m.group(0)
        target = page.split("/")[0] if page.endswith("/index.html") else None
        if target in domains:
            return f'href="#domain-{target}"'
        if page in ("../index.html", "index.html"):
            return 'href="#top"'
        return 'data-not-bundled="' + href.replace('"', "") + '"'

    return _HREF.sub(sub, html)


def _anchor(domain: str | None, frag: str) -> str:
    return f"{domain}-{frag}" if domain else frag


def _prefix_ids(html: str, domain: str) -> str:
    """Element ids of a domain section get the domain as prefix (unique in one file), and
    so do the grid view buttons that name them."""
    return re.sub(r'\b(id|data-view)="([^"]+)"',
                  lambda m: f'{m.group(1)}="{domain}-{m.group(2)}"', html)


def bundle(report_dir: Path) -> str:
    """The report in ``report_dir`` (as rendered by ``render_report``) as one HTML text."""
    index = (report_dir / "index.html").read_text(encoding="utf-8")
    domains = sorted(p.name for p in report_dir.iterdir()
                     if p.is_dir() and (p / "index.html").is_file())
    m = _MAIN.search(index)
    if m is None:
        raise ValueError(f"{report_dir / 'index.html'} has no <main> element")
    body = _links(_inline_images(m.group(1), report_dir), set(domains), None)
    parts = ['<span id="top"></span>', body]
    for d in domains:
        page = (report_dir / d / "index.html").read_text(encoding="utf-8")
        dm = _MAIN.search(page)
        if dm is None:
            continue
        section = _inline_images(dm.group(1), report_dir / d)
        section = _prefix_ids(_links(section, set(domains), d), d)
        parts.append(f'<section id="domain-{d}"><hr>{section}</section>')
    head, tail = index[:m.start()], index[m.end():]
    return head + "<main>" + "\n".join(parts) + "</main>" + tail


def write_single_file(out: Path, dest: Path, config_path: Path | None = None) -> Path:
    """Render ``out``'s report into a temporary folder and write it as one file ``dest``."""
    import tempfile

    from evalkit.present.report.build import render_report

    with tempfile.TemporaryDirectory(prefix="evalkit-report-") as tmp:
        index = render_report(out, config_path, dest=Path(tmp) / "report")
        text = bundle(index.parent)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text, encoding="utf-8")
    return dest
