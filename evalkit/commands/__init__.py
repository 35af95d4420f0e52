"""One module per CLI command family (see evalkit.cli.COMMANDS), and the one error format
they share: ``evalkit CMD: error: MESSAGE`` on stderr."""

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
