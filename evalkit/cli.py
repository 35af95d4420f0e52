"""evalkit's command line: one entry point, one module per command family.

Commands are imported lazily (TensorFlow and torch take seconds to import), so
``evalkit --help`` is instant. Exit codes everywhere: 0 success, 1 a failure the command
reports (a checkpoint that failed, a gate that failed, a check that failed), 2 usage errors
and unusable inputs, 3 disk full, 130 SIGINT, 143 SIGTERM (docs/faults.md).
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from evalkit import __version__
from evalkit.commands import QUIET_HELP, set_quiet

#: command name -> "module:attribute" of its click command
COMMANDS: dict[str, str] = {
    "run": "evalkit.commands.run:run",
    "watch": "evalkit.commands.watch:watch",
    "export": "evalkit.commands.export:export",
    "results": "evalkit.commands.results:results",
    "demo": "evalkit.commands.demo:demo",
    "report": "evalkit.commands.report:report",
    "select": "evalkit.commands.select:select",
    "compare": "evalkit.commands.compare:compare",
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
    "compare": "Compare two evaluations' picks per domain (paired, head to head).",
    "baseline": "Record a checkpoint's results as a baseline JSON file.",
    "gate": "Check results against release rules (exit 1 on failure).",
    "sketches": "Import and check hand-drawn sketch sets.",
    "edges": "Turn photos into pix2pix AB pairs with the HED edge recipe.",
    "weights": "Status, fetch and import of pretrained metric weights.",
    "review": "Pairwise review by people (local page); Bradley-Terry scores from votes.",
}


class CommandError(click.ClickException):
    """A click error (bad usage, or one a command raised) shown as ``evalkit CMD: error:
    MESSAGE``, the prefix every command's own errors use (a usage error keeps click's usage
    and ``Try ... --help`` lines above it); same exit code."""

    def __init__(self, original: click.ClickException, command: str):
        super().__init__(original.format_message())
        self.original, self.command = original, command
        self.exit_code = original.exit_code

    def show(self, file=None) -> None:
        from evalkit.commands import error_line

        o = self.original
        if isinstance(o, click.UsageError) and o.ctx is not None:
            hint = ""
            if o.ctx.command.get_help_option(o.ctx) is not None:
                hint = f"Try '{o.ctx.command_path} {o.ctx.help_option_names[0]}' for help.\n"
            click.echo(f"{o.ctx.get_usage()}\n{hint}", file=file or sys.stderr,
                       color=o.ctx.color)
        click.echo(error_line(self.message, self.command), file=file or sys.stderr)


def _prefixed(exc: click.ClickException, ctx: click.Context) -> CommandError:
    """``exc`` as a :class:`CommandError` naming the command (the deepest one known)."""
    from evalkit.commands import command_path

    if isinstance(exc, click.UsageError) and exc.ctx is not None:
        path = command_path(exc.ctx)
    else:
        path = command_path(ctx) + (f" {ctx.invoked_subcommand}"
                                    if ctx.invoked_subcommand else "")
    return CommandError(exc, path.removeprefix("evalkit").strip())


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
            return with_global_flags(getattr(importlib.import_module(module), attr))
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("evalkit"):
                return None
            raise

    def invoke(self, ctx: click.Context):
        # Ctrl-C outside a run's own handler (e.g. while TensorFlow imports): exit 130 like
        # a shell, not click's "Aborted!" with 1 (the failed-checkpoint code).
        import signal

        from evalkit.core.faults import EXIT_SIGINT, EXIT_SIGTERM, Terminated
        from evalkit.store.endings import interrupted_line

        try:
            return super().invoke(ctx)
        except CommandError:
            raise
        except click.ClickException as exc:  # one error prefix: evalkit CMD: error: ...
            raise _prefixed(exc, ctx) from exc
        except KeyboardInterrupt:
            click.echo(interrupted_line(signal.SIGINT), err=True)
            sys.exit(EXIT_SIGINT)
        except Terminated:
            click.echo(interrupted_line(signal.SIGTERM), err=True)
            sys.exit(EXIT_SIGTERM)

    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        try:  # errors in evalkit's own options (e.g. `evalkit --bogus`)
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            raise CommandError(exc, "") from exc

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Listing help must not import every command module.
        with formatter.section("Commands"):
            formatter.write_dl([(name, HELP.get(name, "")) for name in COMMANDS])


VERBOSE_HELP = "Also show TensorFlow's, absl's and oneDNN's own log lines (hidden by default)."


def _verbose(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        from evalkit.core.quiet import loud_python_warnings, set_verbose

        set_verbose(True)
        loud_python_warnings()  # also after the command name, once the group hid them


def _own_quiet(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    set_quiet(ctx, param, value)
    return value


def with_global_flags(cmd: click.Command) -> click.Command:
    """Give ``cmd`` (and a group's sub-commands) evalkit's global ``--quiet`` and
    ``--verbose``, so they also work after the command name; an option the command already
    has (e.g. ``review serve --verbose``: log requests) is left alone. Idempotent."""
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            with_global_flags(sub)
    have = {o for p in cmd.params for o in getattr(p, "opts", [])}
    for p in cmd.params:  # a command's own --quiet (run, watch) also sets the global one
        if "--quiet" in getattr(p, "opts", []) and p.callback is None:
            p.callback = _own_quiet
    for name, callback, text in (("--quiet", set_quiet, QUIET_HELP),
                                 ("--verbose", _verbose, VERBOSE_HELP)):
        if name not in have:
            cmd.params.append(click.Option([name], is_flag=True, expose_value=False,
                                           callback=callback, help=text))
    return cmd


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="evalkit")
@click.option("--quiet", is_flag=True, expose_value=False, callback=set_quiet, help=QUIET_HELP)
@click.option("--verbose", is_flag=True, expose_value=False, callback=_verbose,
              help=VERBOSE_HELP)
def cli() -> None:
    """evalkit: evaluate sketch-to-image generator checkpoints and pick the one to deploy.

    --quiet and --verbose work before or after the command name."""
    from evalkit.core.quiet import quiet_python_warnings

    quiet_python_warnings()  # evalkit says what matters itself, once (note: lines)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: SIGTERM ends any command with 143 and one line; SIGINT
    or SIGTERM after a run's results and report are final says what is stored (130 / 143).

    ``main()`` (the ``evalkit`` script, ``python -m evalkit.cli``: arguments from
    ``sys.argv``) ends the process as soon as the command has, without Python's slow
    teardown (:func:`evalkit.store.endings.exit_process`); ``main(argv)`` from Python code
    raises ``SystemExit`` like click does."""
    from evalkit.store.endings import exit_process, install_process_signals

    # The command line only (not `import evalkit` in someone's notebook, where it would
    # change what their tf.keras is): tf.keras = tf_keras, what evalkit uses anyway, so
    # `import tensorflow` loads tf_keras's optimizers instead of Keras 3's, whose import
    # pulls in pandas, matplotlib, scikit-learn and scipy (~0.7 s CPU of TensorFlow's
    # import). Keras 3 stays available as `import keras` (.keras files). Inherited by the
    # processes a run starts (Ray workers).
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    install_process_signals()
    if argv is not None:
        cli.main(args=argv, prog_name="evalkit")
        return
    try:
        cli.main(args=sys.argv[1:], prog_name="evalkit")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    exit_process(code)


if __name__ == "__main__":  # pragma: no cover
    main()
