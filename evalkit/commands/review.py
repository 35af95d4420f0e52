"""``evalkit review OUT [--port 8765] [--reviewer NAME]``: pairwise review in the browser;
``evalkit review import OUT votes.json``: votes from the static report's Review page;
``evalkit review scores OUT``: the reviewers' Bradley-Terry scores per domain."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

import click

from evalkit.commands import error_line
from evalkit.commands._output import emit, format_options, render


class _ReviewGroup(click.Group):
    """``evalkit review OUT`` means ``evalkit review serve OUT``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["serve", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_ReviewGroup)
def review() -> None:
    """Pairwise review of served outputs by people; Bradley-Terry scores from the votes.

    \b
    evalkit review OUT [--port 8765] [--reviewer NAME]   the review page (127.0.0.1 only)
    evalkit review import OUT votes.json                  votes from the report's Review page
    evalkit review scores OUT                             refit and print the scores
    """


def _open_store(out: Path):
    """OUT's store, for writing votes and scores (it must exist: `evalkit run` made it)."""
    from evalkit.store.results import DB_NAME, ResultsError, Store, StoreError

    if not (out / DB_NAME).is_file():
        raise click.UsageError(f"no results in {out} ({DB_NAME} not found): run "
                               f"'evalkit run RUN_DIR --out {out}' first")
    try:
        return Store(out)
    except (ResultsError, StoreError) as exc:
        raise click.UsageError(str(exc)) from exc


@review.command("serve")
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port on 127.0.0.1 (0: any free port).")
@click.option("--reviewer", default=None, help="Your name in the votes [default: login name].")
@click.option("--verbose", is_flag=True, help="Log every request.")
def serve(out: Path, port: int, reviewer: str | None, verbose: bool) -> None:
    """Serve the review page for OUT on http://127.0.0.1:PORT/ until Ctrl-C."""
    from evalkit.present.review.server import ReviewServer, ReviewState

    reviewer = (reviewer or getpass.getuser() or "reviewer").strip()
    if not reviewer or len(reviewer) > 64 or not reviewer.isprintable():
        raise click.UsageError("--reviewer must be 1-64 printable characters")
    _open_store(out).close()
    state = ReviewState(out, reviewer)
    if not any(len(p.candidates) >= 2 for p in state.plans):
        state.close()
        raise click.UsageError(f"nothing to review in {out}: no domain has two evaluated "
                               "checkpoints with served outputs on a hand-drawn sketch set "
                               "(evaluate with --sketches)")
    try:
        server = ReviewServer(state, port, verbose=verbose)
    except OSError as exc:
        state.close()
        raise click.UsageError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}; "
                               "choose another --port") from exc
    click.echo(f"review {out} as '{reviewer}': open {server.url}  (Ctrl-C to stop; each "
               "vote is saved at once)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        state.close()
        click.echo("review stopped; votes are in results.sqlite", err=True)


#: Duplicate votes listed one per line by ``review import`` (the rest are counted).
_SHOW_DUPLICATES = 5


@review.command("import")
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.argument("votes_file", type=click.Path(path_type=Path, dir_okay=False))
def import_votes(out: Path, votes_file: Path) -> None:
    """Import a vote file downloaded from the report's Review page.

    A malformed or foreign file (or one over 20 MiB) is refused whole with exit 2. As in
    the live review, one vote per reviewer, sample and checkpoint pair counts: a later one
    is reported as a duplicate and not stored."""
    from evalkit.decide.review.scores import update_human_scores
    from evalkit.decide.review.votes import (
        VoteFileError,
        add_votes,
        ensure_table,
        plan_import,
        read_vote_file,
    )

    store = _open_store(out)
    try:
        ensure_table(store.conn)
        try:
            votes = read_vote_file(votes_file, store.conn)
        except VoteFileError as exc:
            click.echo(error_line(f"{exc}; nothing was imported"), err=True)
            sys.exit(2)
        plan = plan_import(votes, store.conn)
        new = add_votes(store.conn, plan.new, source=f"import:{votes_file.name}")
        fits = update_human_scores(store)
        dup = (f", {len(plan.duplicates)} duplicate(s) not stored: one vote per reviewer, "
               "sample and checkpoint pair, as in the live review" if plan.duplicates else "")
        click.echo(f"imported {new} vote(s) from {votes_file} ({plan.already} already "
                   f"there{dup})")
        for number, v, first in plan.duplicates[:_SHOW_DUPLICATES]:
            click.echo(f"  duplicate: vote {number} ({v.reviewer}, {v.dataset} "
                       f"{v.sample_id}, {v.left_name} vs {v.right_name}) repeats {first}")
        if len(plan.duplicates) > _SHOW_DUPLICATES:
            click.echo(f"  ... and {len(plan.duplicates) - _SHOW_DUPLICATES} more duplicate(s)")
        _print_fits(fits)
    finally:
        store.close()


@review.command("scores")
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@format_options(what="the scores")
def scores(out: Path, fmt: str, output: Path | None) -> None:
    """Refit the reviewers' Bradley-Terry scores from the stored votes and print them.

    csv/json: one record per domain and checkpoint (domain, checkpoint, bt_score, ci_low,
    ci_high, votes, n_votes of the domain), best first."""
    from evalkit.decide.review.scores import update_human_scores
    from evalkit.decide.review.votes import ensure_table

    store = _open_store(out)
    try:
        ensure_table(store.conn)
        fits = update_human_scores(store)
    finally:
        store.close()
    if fmt == "table" and not fits:
        click.echo("no votes yet: run 'evalkit review OUT'")
        return
    emit(render(fmt, score_rows(fits), columns=SCORE_COLUMNS,
                table=lambda: "\n".join(_fit_lines(fits))), output, "the scores", fmt)


#: ``review scores --format csv`` columns
SCORE_COLUMNS = ["domain", "checkpoint", "bt_score", "ci_low", "ci_high", "votes", "n_votes"]


def score_rows(fits: dict) -> list[dict]:
    """Each domain's Bradley-Terry fit as records, best first (NaN CI bounds as None)."""
    def num(v):
        return None if v != v else float(v)

    rows = []
    for d, fit in fits.items():
        for k in sorted(range(len(fit.items)), key=lambda k: -fit.theta[k]):
            rows.append({"domain": d, "checkpoint": fit.items[k], "bt_score": num(fit.theta[k]),
                         "ci_low": num(fit.ci_low[k]), "ci_high": num(fit.ci_high[k]),
                         "votes": int(fit.votes[k]), "n_votes": int(fit.n_votes)})
    return rows


def _print_fits(fits: dict) -> None:
    for line in _fit_lines(fits):
        click.echo(line)


def _fit_lines(fits: dict) -> list[str]:
    lines = []
    for d, fit in fits.items():
        lines.append(f"[{d or 'run'}] {fit.n_votes} counted vote(s); bt_score = centred "
                     "log-strength (higher is better), 95% bootstrap CI")
        order = sorted(range(len(fit.items)), key=lambda k: -fit.theta[k])
        for k in order:
            ci = ("" if fit.ci_low[k] != fit.ci_low[k] else
                  f"  [{fit.ci_low[k]:+.2f}, {fit.ci_high[k]:+.2f}]")
            lines.append(f"  {fit.items[k]:<32} {fit.theta[k]:+.3f}{ci}  "
                         f"({int(fit.votes[k])} votes)")
    return lines
