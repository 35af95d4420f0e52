"""The Python API for notebooks and scripts: the same code paths as the commands.

>>> import evalkit
>>> evalkit.run("checkpoints/", out="out/", heldout="heldout/", sketches="sketches/")
>>> df = evalkit.results("out/")                 # one row per checkpoint x dataset x metric
>>> sel = evalkit.select("out/")                 # selection.json's content, per domain
>>> evalkit.report("out/")                       # out/report/index.html
>>> evalkit.gate("out/", config="evalkit.toml").passed

:func:`run` drives the ``evalkit run`` command itself (every option of ``evalkit run
--help`` is a keyword: ``image_size=64``, ``race=True``, ``domain="car"``) and raises
:class:`EvalkitError` with the command's exit code when it does not succeed; the others
call the functions the commands call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class EvalkitError(RuntimeError):
    """A command ended without success; ``code`` is its exit code (docs: README, Exit codes)."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def _argv(command, args: list[str], options: dict[str, Any]) -> list[str]:
    """``command``'s command line for keyword ``options`` (names as in its ``--help``)."""
    params = {p.name: p for p in command.params if p.param_type_name == "option"}
    argv = list(args)
    for key, value in options.items():
        p = params.get(key)
        if p is None:
            raise TypeError(f"evalkit {command.name} has no option {key!r} (options: "
                            f"{', '.join(sorted(params))})")
        flag = max(p.opts, key=len)
        if p.is_flag:
            if value:
                argv.append(flag)
            elif p.secondary_opts:
                argv.append(max(p.secondary_opts, key=len))
        elif value is None:
            continue
        elif isinstance(value, list | tuple):
            for v in value:
                argv += [flag, str(v)]
        else:
            argv += [flag, str(value)]
    return argv


def run(run_dir: str | Path, out: str | Path = "evalkit-out", **options: Any) -> Path:
    """Evaluate every checkpoint under ``run_dir`` into ``out`` (``evalkit run``); returns
    ``out``. Keywords are ``evalkit run``'s options (``heldout``, ``sketches``,
    ``image_size``, ``domain``, ``race``, ...). Raises :class:`EvalkitError` (with the exit
    code) when the command fails; its messages go to stderr as on the command line."""
    import click

    from evalkit.commands.run import run as command

    argv = _argv(command, [str(run_dir)], {"out": out, **options})
    try:
        command.main(argv, prog_name="evalkit run", standalone_mode=False)
    except click.exceptions.Exit as exc:
        if exc.exit_code:
            raise EvalkitError(f"evalkit run ended with exit {exc.exit_code}",
                               exc.exit_code) from None
    except click.ClickException as exc:
        raise EvalkitError(exc.format_message(), exc.exit_code) from None
    except SystemExit as exc:
        if exc.code not in (0, None):
            code = exc.code if isinstance(exc.code, int) else 1
            raise EvalkitError(f"evalkit run ended with exit {code}", code) from None
    return Path(out)


def results(out: str | Path):
    """The stored results of ``out`` as a pandas DataFrame (``evalkit results``): one row
    per checkpoint x dataset x metric with ``value, ci_low, ci_high, n, status, reason``."""
    from evalkit.store.results import load_results

    return load_results(out)


def select(out: str | Path, config: str | Path | None = None, write: bool = True) -> dict:
    """Choose each domain's deployment checkpoint (``evalkit select``); returns the content of
    ``OUT/selection.json`` (written when ``write``)."""
    from evalkit.decide.selection import select as do_select

    return do_select(out, config, write=write)


def report(out: str | Path, config: str | Path | None = None) -> Path:
    """Render ``OUT/report/`` (``evalkit report``); returns the path of ``index.html``."""
    from evalkit.present.report import render_report

    return render_report(Path(out), Path(config) if config else None)


def gate(out: str | Path, config: str | Path | None = None,
         checkpoint: str | list[str] | None = None, selected: bool = False,
         baseline: str | Path | None = None):
    """Judge the release rules of ``config`` (``evalkit gate``; None: the evalkit.toml
    found for ``out`` as the command finds it); returns the
    :class:`~evalkit.decide.gate.GateReport` (``.passed``, per-domain results)."""
    from evalkit.decide.gate import run_gate

    return run_gate(out, config, checkpoint=checkpoint, selected=selected, baseline=baseline)
