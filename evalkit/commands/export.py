"""``evalkit export OUT --tensorboard LOGDIR | --mlflow``: results into other tools."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.option("--tensorboard", "tensorboard_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Write scalars evalkit/<domain>/<dataset>/<metric> (+ CI bounds) and grid "
                   "images at each checkpoint's step into this TensorBoard log folder.")
@click.option("--no-images", is_flag=True, help="TensorBoard: scalars only.")
@click.option("--mlflow", "to_mlflow", is_flag=True,
              help="Log one MLflow run per domain (metrics per step, selection, report).")
@click.option("--mlflow-uri", help="MLflow tracking URI (e.g. sqlite:///mlflow.db, "
              "file:///abs/mlruns, http://server:5000) [default: $MLFLOW_TRACKING_URI, else "
              "MLflow's own default: mlflow.db in the current folder, artifacts in "
              "mlartifacts/ beside it; the command prints where it writes].")
@click.option("--experiment", default="evalkit", show_default=True,
              help="MLflow experiment name.")
def export(out: Path, tensorboard_dir: Path | None, no_images: bool, to_mlflow: bool,
           mlflow_uri: str | None, experiment: str) -> None:
    """Export the results in OUT to TensorBoard and/or MLflow.

    Exporting again writes only what is new: no point is ever written twice. Exit 0 on
    success, 1 when an export failed, 2 on usage errors (no target, no results in OUT,
    the tool's package not installed).
    """
    from evalkit.store.results import ResultsError, Store

    if tensorboard_dir is None and not to_mlflow and mlflow_uri is None:
        raise click.UsageError("nothing to export to: pass --tensorboard LOGDIR and/or "
                               "--mlflow")
    try:
        Store(out, create=False).close()  # no results: say so before anything else
        if tensorboard_dir is not None:
            from evalkit.present.export.tensorboard import export_tensorboard
            tb = export_tensorboard(out, tensorboard_dir, images=not no_images)
            for note in tb.notes:
                click.echo(f"note: {note}", err=True)
            click.echo(f"tensorboard: {tb.summary()} in {tensorboard_dir}", err=True)
        if to_mlflow or mlflow_uri is not None:
            from evalkit.present.export.mlflow import export_mlflow, tracking_target
            uri, source = tracking_target(mlflow_uri)
            hint = ("" if source == "--mlflow-uri" else
                    "; pass --mlflow-uri URI to write elsewhere")
            click.echo(f"mlflow: writing to {uri} ({source}{hint})", err=True)
            for r in export_mlflow(out, uri, experiment):
                click.echo(f"mlflow: run {r.run_id} ({r.domain or out.name}, "
                           f"{'new' if r.created else 'updated'}): {r.logged} metric points "
                           f"logged, {r.unchanged} already there; artifacts in "
                           f"{r.artifact_location}", err=True)
    except (ResultsError, ImportError) as exc:
        raise click.UsageError(str(exc)) from exc
    except Exception as exc:  # the tool's own error (store unreachable, permissions, ...)
        raise click.ClickException(f"export failed: {type(exc).__name__}: {exc}") from exc
