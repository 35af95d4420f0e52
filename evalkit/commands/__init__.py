"""One module per CLI command family (see evalkit.cli.COMMANDS), the one error format
they share (``evalkit CMD: error: MESSAGE`` on stderr) and the global ``--quiet`` flag."""

from __future__ import annotations

import click


def command_path(ctx: click.Context | None) -> str:
    """``evalkit CMD [SUB]`` of ``ctx`` (whatever name the program was started under)."""
    words = ctx.command_path.split()[1:] if ctx is not None else []
    return " ".join(["evalkit", *words])


def error_line(message: str, command: str | None = None) -> str:
    """``evalkit CMD: error: MESSAGE``; ``command`` is the path after ``evalkit`` (default:
    the command running now, from click's context)."""
    path = (" ".join(["evalkit", command]).strip() if command is not None
            else command_path(click.get_current_context(silent=True)))
    return f"{path}: error: {message}"


#: key in click's shared ``Context.meta`` set by ``--quiet`` (before or after the command)
QUIET_KEY = "evalkit.quiet"


def set_quiet(ctx: click.Context, param: click.Parameter | None = None,
              value: bool = True) -> None:
    """click callback of ``--quiet``: remember it for this invocation (``ctx.meta`` is shared
    by every nested context; nothing leaks into the environment or the next command)."""
    if value:
        ctx.meta[QUIET_KEY] = True


def is_quiet() -> bool:
    """Was ``--quiet`` given (``evalkit --quiet CMD`` or ``evalkit CMD --quiet``)? Quiet means
    no progress bars and no ``wrote FILE`` notes; data and errors still print."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get(QUIET_KEY))


QUIET_HELP = "No progress bars and no 'wrote FILE' notes (data and errors still print)."


def quiet_option(f):
    """``--quiet`` on a command itself (so the command object works on its own too, e.g.
    invoked directly in tests); the same flag as ``evalkit --quiet``: read it with
    :func:`is_quiet`."""
    return click.option("--quiet", is_flag=True, expose_value=False, callback=set_quiet,
                        help=QUIET_HELP)(f)
