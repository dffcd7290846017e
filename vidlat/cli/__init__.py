"""The ``vidlat`` command: one verb per step of the user's path, each a thin caller of ``vidlat.api``
(see docs/design.md).

Each verb group lives in its own module and is registered in ``COMMANDS``. Library code raises
``VidlatError``; here it becomes one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from profiler import __version__
from profiler.errors import VidlatError

# (module, attribute) of every top-level command, in the order of the user's path (`vidlat --help` lists them so).
COMMANDS: list[tuple[str, str]] = [
    ("vidlat.cli.devices", "devices"),
    ("vidlat.cli.agent", "agent"),
    ("vidlat.cli.space", "space"),
    ("vidlat.cli.space", "arch"),
    ("vidlat.cli.profile", "profile"),
    ("vidlat.cli.simulate", "simulate"),
    ("vidlat.cli.lut", "lut"),
    ("vidlat.cli.fit", "fit"),
    ("vidlat.cli.fit", "evaluate"),
    ("vidlat.cli.predict", "predict"),
    ("vidlat.cli.search", "search"),
    ("vidlat.cli.train", "train"),
    ("vidlat.cli.export", "export"),
    ("vidlat.cli.run", "run"),
]

# commands that keep their work when interrupted, and what a user is told on Ctrl-C
RESUMABLE: dict[str, str] = {
    "profile": "everything measured so far is stored",
    "run": "everything measured so far is stored",
}

ARGS_KEY = "vidlat.args"  # ctx.meta: the command line, to name the command of an error click gives no context


class OneLineUsageError(click.ClickException):
    """Click's own error (unknown verb or option, bad value) as one ``error:`` line, exit code 2."""

    exit_code = 2

    def __init__(self, error: click.ClickException, command_path: str) -> None:
        message = " ".join(error.format_message().split())
        if isinstance(error, click.UsageError):
            context = error.ctx
            message = f"{message} (see '{context.command_path if context else command_path} --help')"
        super().__init__(message)

    def show(self, file: object = None) -> None:
        click.echo(f"error: {self.message}", err=True)


class VidlatGroup(click.Group):
    """A click group that turns library errors, and click's own usage errors anywhere in the command
    tree, into one clear line and exit code 2.

    Commands are imported when they are used (the name of a command is its attribute in
    ``COMMANDS``), so `vidlat agent serve` runs on a device that has no torch or pandas.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [attribute for _, attribute in COMMANDS]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        for module, attribute in COMMANDS:
            if attribute == cmd_name:
                return getattr(importlib.import_module(module), attribute)
        return None

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:
            ctx = super().make_context(info_name, list(args), parent=parent, **extra)
        except click.ClickException as exc:
            raise _one_line(exc, info_name or "vidlat") from None
        ctx.meta[ARGS_KEY] = list(args)
        return ctx

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            raise _one_line(exc, _command_path(ctx, ctx.meta.get(ARGS_KEY, []))) from None
        except VidlatError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except KeyboardInterrupt:
            kept = RESUMABLE.get(ctx.invoked_subcommand or "")
            click.echo(f"interrupted; {kept}" if kept else "interrupted", err=True)
            ctx.exit(130)


def _one_line(error: click.ClickException, command_path: str) -> click.ClickException:
    """``error`` as a ``OneLineUsageError``; "no arguments, here is the help" stays as click shows it."""
    if isinstance(error, OneLineUsageError | click.exceptions.NoArgsIsHelpError):
        return error
    return OneLineUsageError(error, command_path)


def _command_path(ctx: click.Context, args: list[str]) -> str:
    """The deepest command ``args`` name below ``ctx`` ("vidlat lut export"), for errors click gives no context."""
    command: click.Command = ctx.command
    path = [ctx.command_path]
    for arg in args:
        found = command.get_command(ctx, arg) if isinstance(command, click.Group) else None
        if found is None:
            if arg.startswith("-"):
                continue
            break
        command = found
        path.append(arg)
    return " ".join(path)


@click.group(cls=VidlatGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vidlat")
def cli() -> None:
    """Hardware-aware latency toolkit for video neural networks."""
    from vidlat.cli.common import show_library_log

    show_library_log()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="vidlat")


if __name__ == "__main__":
    sys.exit(main())
