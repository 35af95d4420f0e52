"""One way for every command to print data: ``--format table|csv|json`` and
``-o/--output FILE`` (``-``, the default, is stdout).

* ``table``: the command's own text for a terminal (what it printed before ``--format``);
* ``csv``: a header line, then one row per record (RFC 4180 quoting via :mod:`csv`; lists and
  dicts in a cell as compact JSON, ``None`` as an empty cell);
* ``json``: the command's JSON document (a list of records unless the command documents an
  object), indented, UTF-8, one trailing newline.

No pandas or heavy import here: ``results``/``select``/``gate`` stay quick
(tests/test_quiet_and_lazy.py); a DataFrame is accepted and converted by its own methods.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import click

FORMATS = ("table", "csv", "json")


def format_options(default: str = "table", formats: tuple[str, ...] = FORMATS,
                   what: str = "the data") -> Callable:
    """Decorator adding ``--format`` (choice of ``formats``) and ``-o/--output FILE``
    (``-``: stdout) to a click command; they arrive as ``fmt`` and ``output``."""
    def deco(f: Callable) -> Callable:
        f = click.option("-o", "--output", "output", metavar="FILE",
                         type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
                         help=f"Write {what} to FILE instead of stdout ('-': stdout).")(f)
        return click.option("--format", "fmt", type=click.Choice(list(formats)),
                            default=default, show_default=True,
                            help="Output format: " + ", ".join(formats) + ".")(f)
    return deco


def _cell(v: Any) -> str:
    """A CSV cell: '' for None/NaN, JSON for lists and dicts, str otherwise."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v, separators=(",", ":"), default=str)
    return str(v)


def to_csv(rows: Iterable[Mapping[str, Any]], columns: list[str] | None = None) -> str:
    """Records as CSV text with a header; ``columns`` default to every key, first-seen order
    (a header is written even for no rows when ``columns`` is given)."""
    rows = list(rows)
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if columns:
        w.writerow(columns)
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in columns])
    return buf.getvalue()


def to_json(data: Any) -> str:
    """``data`` as indented JSON with a trailing newline (non-JSON values via ``str``)."""
    return json.dumps(data, indent=2, default=str) + "\n"


def render(fmt: str, rows: Any, *, table: Callable[[], str] | None = None,
           document: Any = None, columns: list[str] | None = None) -> str:
    """The text for ``fmt``.

    Args:
        fmt: ``table``, ``csv`` or ``json``.
        rows: records (list of dicts) or a pandas DataFrame: the CSV rows, and the JSON
            unless ``document`` is given.
        table: builds the terminal text (default: CSV-like aligned columns of ``rows``).
        document: the JSON document when it is not just ``rows`` (e.g. an object).
        columns: CSV columns and order (default: every key, first-seen order).
    """
    is_frame = hasattr(rows, "to_csv") and hasattr(rows, "columns")
    if fmt == "csv":
        if is_frame:
            return rows.to_csv(index=False, columns=columns)
        return to_csv(rows, columns)
    if fmt == "json":
        if document is not None:
            return to_json(document)
        if is_frame:
            return rows.to_json(orient="records", indent=1) + "\n"
        return to_json(list(rows))
    if table is not None:
        text = table()
        return text if text.endswith("\n") else text + "\n"
    if is_frame:
        return rows.to_string(index=False, na_rep="-") + "\n"
    return aligned(list(rows), columns)


def aligned(rows: list[Mapping[str, Any]], columns: list[str] | None = None) -> str:
    """Left-aligned plain-text columns with a header line (empty cells as ``-``)."""
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    if not columns:
        return ""
    cells = [[_cell(r.get(c)) or "-" for c in columns] for r in rows]
    width = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(width[i]) for i, c in enumerate(columns)).rstrip()]
    lines += ["  ".join(v.ljust(width[i]) for i, v in enumerate(row)).rstrip() for row in cells]
    return "\n".join(lines) + "\n"


def is_stdout(output: Path | str | None) -> bool:
    """True when ``output`` means stdout (not given, or ``-``)."""
    return output is None or str(output) == "-"


def emit(text: str, output: Path | str | None, what: str = "output",
         fmt: str = "table") -> None:
    """Write ``text`` to stdout (``output`` None or ``-``) or to the file ``output`` (its
    folder created; then ``wrote WHAT FILE`` on stderr). An unwritable file is exit 2
    naming it. csv/json (``fmt``) reach stdout byte for byte; a table goes through click's
    usual echo (escape sequences stripped when stdout is not a terminal)."""
    if is_stdout(output):
        click.echo(text, nl=False, color=True if fmt != "table" else None)
        return
    path = Path(output)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.UsageError(f"cannot write {path}: {exc.strerror or exc}; choose another "
                               "-o/--output file") from exc
    from evalkit.commands import is_quiet

    if not is_quiet():
        click.echo(f"wrote {what} {path}", err=True)
