"""``evalkit results OUT``: the aggregate results table."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import pandas as pd

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


@click.command()
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "table"]), default="table",
              show_default=True)
@click.option("--mismatch", is_flag=True,
              help="Held-out (HED) vs hand-drawn values side by side, with their difference.")
@click.option("--per-sample", is_flag=True, help="Per-sample values instead of aggregates.")
@click.option("--all", "show_all", is_flag=True,
              help="History too: evaluations superseded when the data, --limit, the "
                   "checkpoint or the metric settings changed (column current = 0).")
def results(out: Path, fmt: str, mismatch: bool, per_sample: bool, show_all: bool) -> None:
    """Print the results of an evaluation folder (read-only: works on a read-only folder).

    Columns (csv/json): checkpoint, step, domain, dataset, kind, metric, value, n, std, ci_low,
    ci_high, status, reason, flags, checkpoint_hash, dataset_hash; with --all also current,
    run_id, completed_at, superseded_at, why.
    """
    from evalkit.store.results import ResultsError, Store

    if show_all and (per_sample or mismatch):
        raise click.UsageError("--all shows aggregate results; it does not combine with "
                               "--per-sample or --mismatch")
    try:
        with Store(out, create=False) as store:
            df = store.sample_metrics() if per_sample else store.results(history=show_all)
    except ResultsError as exc:
        raise click.UsageError(str(exc)) from exc
    if mismatch:
        df = _mismatch(df, out)
    if fmt == "csv":
        df.to_csv(sys.stdout, index=False)
    elif fmt == "json":
        click.echo(df.to_json(orient="records", indent=1))
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
        df = visible_text(df)
        with pd.option_context("display.max_rows", None, "display.width", 200,
                               "display.max_colwidth", 60):
            click.echo(df.to_string(index=False, na_rep="-"))
