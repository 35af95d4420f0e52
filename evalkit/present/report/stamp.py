"""Is ``OUT/report`` up to date? A fingerprint of everything the report is made from.

``evalkit run``/``demo`` re-render the report only when this fingerprint differs from the one
stamped into ``OUT/report/.evalkit-stamp`` after the last render, so an unchanged re-run does
not spend seconds redrawing identical plots and grids. The fingerprint covers the evalkit
version and the report code and templates, the current results, checkpoints, datasets and
evaluations (with their completion times), the distinct run settings (folder, command line,
versions, options; a repeated identical run adds no new row to it), ``selection.json``
(and the ``selection.previous.json`` it replaced) and
the ranking config the report uses. ``evalkit report OUT`` always re-renders (and drops the
stamp, so the next run renders again).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

STAMP = ".evalkit-stamp"
_RUN_SETTINGS = ["run_dir", "argv", "evalkit_version", "tensorflow_version", "torch_version",
                 "image_size", "options"]


def _code_digest() -> str:
    import evalkit
    import evalkit.present.report as report

    h = hashlib.sha256(evalkit.__version__.encode())
    root = Path(report.__file__).parent
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix in (".py", ".html", ".css", ".js"):
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def fingerprint(out: str | Path, config_path: str | Path | None = None) -> str:
    """sha256 of what ``OUT/report`` is rendered from (raises like a store reader), the
    ranking config being ``config_path`` or else the run's (``config_for``)."""
    from evalkit.decide.ranking.rank import config_for
    from evalkit.store.results import Store

    out = Path(out)
    h = hashlib.sha256(_code_digest().encode())
    with Store(out, create=False) as store:
        frames = [store.results(),
                  store.checkpoints().drop(columns=["updated_at"]),
                  store.datasets().drop(columns=["updated_at"]),
                  store.evaluations().sort_values(["checkpoint", "dataset"]),
                  store.runs()[_RUN_SETTINGS].drop_duplicates().sort_values(_RUN_SETTINGS)]
    for df in frames:
        h.update(df.to_csv(index=False).encode())
    config = config_path if config_path is not None else config_for(out)
    for path in (out / "selection.json", out / "selection.previous.json", config):
        if path is not None and Path(path).is_file():
            h.update(Path(path).read_bytes())
    return h.hexdigest()


def is_current(out: str | Path, digest: str) -> bool:
    """Does ``OUT/report`` exist and carry this fingerprint?"""
    report = Path(out) / "report"
    try:
        stamp = json.loads((report / STAMP).read_text())
    except (OSError, ValueError):
        return False
    return stamp.get("fingerprint") == digest and (report / "index.html").is_file()


def stamp(out: str | Path, digest: str) -> None:
    """Record that ``OUT/report`` was rendered from ``digest``."""
    (Path(out) / "report" / STAMP).write_text(json.dumps({"fingerprint": digest}))


def render_if_stale(out: str | Path, config_path: str | Path | None = None
                    ) -> tuple[Path, bool]:
    """Render ``OUT/report`` unless its stamp matches what it is made from (results,
    ``selection.json``, config, code); returns ``(index.html, rendered)``. ``config_path``:
    the ranking config to render with (``evalkit select --config F`` passes its own, so the
    page it refreshes agrees with the selection it wrote); default the run's. Raises like
    :func:`~evalkit.present.report.build.render_report`."""
    out = Path(out)
    digest = fingerprint(out, config_path)
    if is_current(out, digest):
        return out / "report" / "index.html", False
    # imported only now: an up-to-date report costs no matplotlib or jinja2 import
    from evalkit.present.report.build import render_report

    path = render_report(out, config_path)
    stamp(out, digest)
    return path, True
