"""``evalkit results OUT``: the aggregate results table."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from evalkit.commands._output import emit, format_options, render

#: Metrics shown in the compact per-checkpoint table, per dataset kind, in order.
HEADLINE = ["l1", "ssim", "psnr", "lpips", "fid", "kid", "adherence_f1"]


def checkpoint_table(out: Path) -> pd.DataFrame:
    """One row per checkpoint (failed ones too) with its domain; headline metrics as
    ``track:metric`` (each row's values are on its own domain's datasets); for the terminal
    (:func:`visible_text`)."""
    from evalkit.store.results import Store

    with Store(out, create=False) as store:
        res = store.results()
        ckpts = store.checkpoints()
    table = ckpts[["name", "domain", "step", "status"]].rename(columns={"name": "checkpoint"})
    if not table["domain"].astype(bool).any():
        table = table.drop(columns="domain")
    else:
        table = table.sort_values(["domain", "step", "checkpoint"], kind="stable")
    ok = res[(res.status == "ok") & res.metric.isin(HEADLINE)].copy()
    if not ok.empty:
        ok["col"] = ok.kind.fillna(ok.dataset) + ":" + ok.metric
        wide = ok.pivot_table(index="checkpoint", columns="col", values="value",
                              aggfunc="first")
        tracks = list(dict.fromkeys(ok.kind.fillna(ok.dataset)))
        order = [f"{d}:{m}" for d in tracks for m in HEADLINE
                 if f"{d}:{m}" in wide.columns]
        wide = wide[order].round(4)
        table = table.merge(wide, left_on="checkpoint", right_index=True, how="left")
    failed = ckpts.set_index("name")["error"]
    table["error"] = table.checkpoint.map(failed).fillna("")
    if not table["error"].astype(bool).any():
        table = table.drop(columns="error")
    return visible_text(table)


def visible_text(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` for a terminal: control characters in its text cells (names from folders,
    errors) as visible escapes (``\\x1b``, ``\\n``), so no cell can move the cursor, recolour
    the terminal or break a row."""
    from evalkit.core.names import visible

    return df.assign(**{c: df[c].map(lambda v: visible(v) if isinstance(v, str) else v)
                        for c in df.columns
                        if df[c].dtype == object or pd.api.types.is_string_dtype(df[c])})


#: What ``--mismatch`` pairs: dataset kind -> how the message names it.
MISMATCH_TRACKS = {"heldout": "held-out (HED) pairs", "sketches": "hand-drawn sketches"}


def _mismatch(df: pd.DataFrame, out: Path) -> pd.DataFrame:
    """``--mismatch``'s table; exit 2 naming what is missing when OUT lacks the held-out or
    the hand-drawn results (e.g. a run without --sketches)."""
    from evalkit.decide.mismatch import mismatch_table

    kinds = set(df["kind"].fillna(df["dataset"]) if "kind" in df.columns else df["dataset"])
    missing = [what for kind, what in MISMATCH_TRACKS.items() if kind not in kinds]
    if len(df) and missing:
        datasets = ", ".join(sorted(set(df["dataset"])))
        raise click.UsageError(
            f"--mismatch compares held-out (HED) and hand-drawn sketch results, but {out} has "
            f"no results on {' and '.join(missing)} (datasets: {datasets}); evaluate them "
            f"first: evalkit run RUN_DIR --heldout PAIRS --sketches FOLDER --out {out}")
    try:
        return mismatch_table(df)
    except ValueError as exc:  # e.g. two sketch datasets and no "sketches"
        reason = str(exc).split("; name it:")[0]  # the API's hint; the CLI has no such option
        raise click.UsageError(f"--mismatch cannot pair the datasets of {out}: {reason}") \
            from exc


def filter_rows(df: pd.DataFrame, dataset_domain: dict[str, str], domains: tuple[str, ...],
                checkpoints: tuple[str, ...], metrics: tuple[str, ...]) -> pd.DataFrame:
    """The rows of ``df`` in ``domains``, of ``checkpoints`` and ``metrics`` (each empty: all).
    A value ``df`` does not have is a UsageError (exit 2) listing the ones it has.
    ``dataset_domain`` gives a domain to rows without a ``domain`` column (per-sample)."""
    domain = (df["domain"] if "domain" in df.columns
              else df["dataset"].map(dataset_domain).fillna(""))
    keep = pd.Series(True, index=df.index)
    for option, wanted, column in (("--domain", domains, domain),
                                   ("--checkpoint", checkpoints, df["checkpoint"]),
                                   ("--metric", metrics, df["metric"])):
        if not wanted:
            continue
        have = sorted(set(column.dropna().astype(str)))
        unknown = [w for w in wanted if w not in have]
        if unknown:
            raise click.UsageError(f"{option} {', '.join(unknown)}: not in these results; "
                                   f"known: {', '.join(h or repr(h) for h in have) or 'none'}")
        keep &= column.isin(wanted)
    return df[keep]


def footnote_reasons(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The table with each distinct ``reason`` replaced by ``[k]``, and the lines
    ``[k] reason`` to print once below it (a skip reason is often 200+ characters)."""
    if "reason" not in df.columns:
        return df, []
    reasons = list(dict.fromkeys(df["reason"].dropna().astype(str)))
    keys = {r: f"[{i}]" for i, r in enumerate(reasons, 1)}
    return (df.assign(reason=df["reason"].map(keys)),
            [f"{keys[r]} {r}" for r in reasons])


@click.command()
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@format_options(what="the results")
@click.option("--domain", "domains", metavar="D", multiple=True,
              help="Only this domain's rows (repeatable; '' is a run without domains).")
@click.option("--checkpoint", "checkpoints", metavar="NAME", multiple=True,
              help="Only this checkpoint's rows, a name as printed (repeatable).")
@click.option("--metric", "metrics", metavar="M", multiple=True,
              help="Only this metric's rows, e.g. ssim (repeatable).")
@click.option("--mismatch", is_flag=True,
              help="Held-out (HED) vs hand-drawn values side by side, with their difference.")
@click.option("--per-sample", is_flag=True, help="Per-sample values instead of aggregates.")
@click.option("--all", "show_all", is_flag=True,
              help="History too: evaluations superseded when the data, --limit, the "
                   "checkpoint or the metric settings changed (column current = 0).")
@click.option("--wide", is_flag=True,
              help="One row per checkpoint with the headline metrics as track:metric "
                   "columns (the table `run` prints).")
def results(out: Path, fmt: str, output: Path | None, domains: tuple[str, ...],
            checkpoints: tuple[str, ...], metrics: tuple[str, ...], mismatch: bool,
            per_sample: bool,
            show_all: bool, wide: bool) -> None:
    """Print the results of an evaluation folder (read-only: works on a read-only folder).

    Columns (csv/json): checkpoint, step, domain, dataset, kind, metric, value, n, std, ci_low,
    ci_high, status, reason, flags, checkpoint_hash, dataset_hash; with --all also current,
    run_id, completed_at, superseded_at, why. The table prints each distinct reason once,
    below it, as [k]; csv/json carry it on every row. An unknown --domain, --checkpoint or
    --metric is exit 2, listing the known ones.
    """
    from evalkit.store.results import ResultsError, Store

    if show_all and (per_sample or mismatch):
        raise click.UsageError("--all shows aggregate results; it does not combine with "
                               "--per-sample or --mismatch")
    if wide and (per_sample or mismatch or show_all):
        raise click.UsageError("--wide is one row per checkpoint; it does not combine with "
                               "--per-sample, --mismatch or --all")
    if wide:
        _print_wide(out, fmt, output, domains, checkpoints, metrics)
        return
    try:
        with Store(out, create=False) as store:
            df = store.sample_metrics() if per_sample else store.results(history=show_all)
            dataset_domain = (dict(zip(store.datasets()["name"], store.datasets()["domain"],
                                       strict=True)) if per_sample and domains else {})
    except ResultsError as exc:
        raise click.UsageError(str(exc)) from exc
    if (domains or checkpoints or metrics) and not df.empty:
        df = filter_rows(df, dataset_domain, domains, checkpoints, metrics)
    if mismatch:
        df = _mismatch(df, out)
    if fmt != "table":
        emit(render(fmt, df), output, "results", fmt)
    elif df.empty:
        click.echo(f"no evaluations stored in {out} yet (e.g. a run stopped before its first "
                   "one finished): run `evalkit run` again", err=True)
    else:
        if show_all:
            df = df.assign(dataset_hash=df.dataset_hash.str[:12],
                           superseded=pd.to_datetime(df.superseded_at, unit="s")
                           .dt.strftime("%Y-%m-%d %H:%M"))
            df = df.drop(columns=["flags", "checkpoint_hash", "kind", "run_id",
                                  "completed_at", "superseded_at"])
        elif not mismatch and not per_sample:
            df = df.drop(columns=["flags", "checkpoint_hash", "dataset_hash", "kind"])
        df, notes = footnote_reasons(visible_text(df))  # controls escaped, reasons once
        with pd.option_context("display.max_rows", None, "display.width", 200,
                               "display.max_colwidth", 60):
            text = df.to_string(index=False, na_rep="-") + "\n"
        if notes:
            text += "\nreasons:\n" + "\n".join(notes) + "\n"
        emit(text, output, "results")


def _print_wide(out: Path, fmt: str, output: Path | None, domains: tuple[str, ...],
                checkpoints: tuple[str, ...], metrics: tuple[str, ...]) -> None:
    """``results --wide``: :func:`checkpoint_table`, filtered; ``--metric`` keeps the
    ``track:metric`` columns of those metrics."""
    from evalkit.store.results import ResultsError

    try:
        table = checkpoint_table(out)
    except ResultsError as exc:
        raise click.UsageError(str(exc)) from exc
    long = table.assign(domain=table["domain"] if "domain" in table.columns else "",
                        metric="")
    table = table.loc[filter_rows(long, {}, domains, checkpoints, ()).index]
    if metrics:
        cols = [c for c in table.columns if ":" in c]
        have = sorted({c.split(":", 1)[1] for c in cols})
        unknown = [m for m in metrics if m not in have]
        if unknown:
            raise click.UsageError(f"--metric {', '.join(unknown)}: not in the --wide "
                                   f"table; known: {', '.join(have) or 'none'}")
        table = table.drop(columns=[c for c in cols if c.split(":", 1)[1] not in metrics])
    emit(render(fmt, table), output, "results", fmt)
