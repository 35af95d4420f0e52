"""evalkit's command line: one entry point, one module per command family.

Commands are imported lazily (TensorFlow and torch take seconds to import), so
``evalkit --help`` is instant. Exit codes everywhere: 0 success, 1 a failure the command
reports (a checkpoint that failed, a gate that failed, a check that failed), 2 usage errors
and unusable inputs, 3 disk full, 130 SIGINT, 143 SIGTERM (docs/faults.md).
"""

from __future__ import annotations

import importlib
import sys

import click

from evalkit import __version__

#: command name -> "module:attribute" of its click command
COMMANDS: dict[str, str] = {
    "run": "evalkit.commands.run:run",
    "watch": "evalkit.commands.watch:watch",
    "export": "evalkit.commands.export:export",
    "results": "evalkit.commands.results:results",
    "demo": "evalkit.commands.demo:demo",
    "report": "evalkit.commands.report:report",
    "select": "evalkit.commands.select:select",
    "baseline": "evalkit.commands.gate:baseline",
    "gate": "evalkit.commands.gate:gate",
    "sketches": "evalkit.commands.sketches:sketches",
    "edges": "evalkit.commands.edges:edges",
    "weights": "evalkit.commands.weights:weights",
    "review": "evalkit.commands.review:review",
}

HELP = {
    "run": "Evaluate every checkpoint of a run folder.",
    "watch": "Evaluate each checkpoint as training writes it (until idle or Ctrl-C).",
    "export": "Export results to TensorBoard and/or MLflow.",
    "results": "Print the aggregate results table (csv/json/table).",
    "demo": "Evaluate the shipped example run end to end.",
    "report": "Render the HTML report of an evaluation folder.",
    "select": "Choose the deployment checkpoint; optionally export it.",
    "baseline": "Record a checkpoint's results as a baseline JSON file.",
    "gate": "Check results against release rules (exit 1 on failure).",
    "sketches": "Import and check hand-drawn sketch sets.",
    "edges": "Turn photos into pix2pix AB pairs with the HED edge recipe.",
    "weights": "Status, fetch and import of pretrained metric weights.",
    "review": "Pairwise review by people (local page); Bradley-Terry scores from votes.",
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("evalkit"):
                return None
            raise

    def invoke(self, ctx: click.Context):
        # Ctrl-C outside a run's own handler (e.g. while TensorFlow imports): exit 130 like
        # a shell, not click's "Aborted!" with 1 (the failed-checkpoint code).
        from evalkit.core.faults import EXIT_SIGINT, EXIT_SIGTERM, Terminated

        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("interrupted (SIGINT)", err=True)
            sys.exit(EXIT_SIGINT)
        except Terminated:
            click.echo("terminated (SIGTERM)", err=True)
            sys.exit(EXIT_SIGTERM)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Listing help must not import every command module.
        with formatter.section("Commands"):
            formatter.write_dl([(name, HELP.get(name, "")) for name in COMMANDS])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="evalkit")
@click.option("--verbose", is_flag=True,
              help="Also show TensorFlow's, absl's and oneDNN's own log lines (hidden by "
                   "default).")
def cli(verbose: bool) -> None:
    """evalkit: evaluate sketch-to-image generator checkpoints and pick the one to deploy."""
    if verbose:
        from evalkit.core.quiet import set_verbose

        set_verbose(True)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (SIGTERM ends any command with 143 and one line)."""
    import signal

    from evalkit.core.faults import install_sigterm_handler

    install_sigterm_handler(signal.SIGTERM)
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="evalkit")


if __name__ == "__main__":  # pragma: no cover
    main()
