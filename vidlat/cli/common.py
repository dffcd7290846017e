"""What the ``vidlat`` verbs share: the options they all take, and the library's log shown as output.

Defaults are never repeated here: they come from the configs (``search.config``, ``predictors.fit``).
"""

from __future__ import annotations

import logging

import click

STORE_HELP = "latency store file [default: $VIDLAT_STORE or user data dir]"

store_option = click.option("--store", "store_path", type=click.Path(dir_okay=False), help=STORE_HELP)
stored_device_option = click.option("--device", "device_name", required=True,
                                    help="device name (shipped, in the store, or a .yaml path)")
space_option = click.option("--space", "space_name", default="default", show_default=True, help="search space name or YAML path")


class EchoHandler(logging.Handler):
    """Log records of the ``vidlat`` logger as plain lines: INFO on stdout, warnings on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(record.getMessage(), err=record.levelno >= logging.WARNING)


def show_library_log() -> None:
    """Print what the library logs (what a step is about to do, notes) as the command's own output."""
    logger = logging.getLogger("vidlat")
    if not any(isinstance(handler, EchoHandler) for handler in logger.handlers):
        logger.addHandler(EchoHandler())
    logger.setLevel(logging.INFO)
    logger.propagate = False


__all__ = ["STORE_HELP", "EchoHandler", "show_library_log", "space_option", "store_option", "stored_device_option"]
