"""``hectl add-console-password``."""

from __future__ import annotations

import os
import stat
import sys
from typing import TYPE_CHECKING

import click

from hectl import parse
from hectl.commands.options import format_options, pick_format
from hectl.context import AppContext
from hectl.errors import OperationFailed
from hectl.output import Output, warn
from hectl.vm import control

if TYPE_CHECKING:
    from collections.abc import Mapping

PASSWORD_ENV = "HECTL_CONSOLE_PASSWORD"


def _expire(ctx: click.Context, param: click.Parameter, value: str) -> float:
    try:
        return parse.duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _first_line(text: str) -> str:
    return text.split("\n", 1)[0].rstrip("\r")


def read_password(from_stdin: bool, path: str | None, environ: Mapping[str, str], quiet: bool) -> str:
    """The password from exactly one source: --password-stdin, --password-file, $HECTL_CONSOLE_PASSWORD or a prompt."""
    sources = [name for name, used in (("--password-stdin", from_stdin), ("--password-file", path)) if used]
    if len(sources) > 1:
        raise click.UsageError("give the password one way: --password-stdin or --password-file")
    if from_stdin:
        return _first_line(sys.stdin.read(4096))
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                mode = os.fstat(f.fileno()).st_mode
                text = f.read(4096)
        except (OSError, UnicodeDecodeError) as exc:
            raise OperationFailed(f"cannot read the password file {path}: {getattr(exc, 'strerror', None) or exc}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            warn(f"{path} can be read by other users (chmod 600 it)", quiet)
        return _first_line(text)
    if environ.get(PASSWORD_ENV):
        return environ[PASSWORD_ENV]
    if not sys.stdin.isatty():
        raise click.UsageError(f"no password: use --password-stdin, --password-file or ${PASSWORD_ENV} (stdin is not a terminal)")
    return str(click.prompt("Console password", hide_input=True, confirmation_prompt=True))


@click.command("add-console-password")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.option("--password-file", type=click.Path(dir_okay=False), help="Read the password from the first line of FILE.")
@click.option(
    "--expire",
    default="120s",
    show_default=True,
    callback=_expire,
    metavar="DURATION",
    help="The password stops working after this (e.g. 90s, 10m).",
)
@format_options
@click.pass_obj
def command(app: AppContext, password_stdin: bool, password_file: str | None, expire: float, fmt: str, as_json: bool) -> Output:
    """Set a temporary password on the engine VM's graphical console (VNC or SPICE).

    The password comes from a prompt, --password-stdin, --password-file or
    $HECTL_CONSOLE_PASSWORD, never from the command line, and is never logged.
    Prints the address to connect to. VNC uses only the first 8 characters.
    """
    password = read_password(password_stdin, password_file, app.environ, app.quiet)
    result = control.console_password(app, password, expire)
    if result["truncated"]:
        warn(f"VNC uses only the first {control.VNC_PASSWORD_MAX} characters of the password", app.quiet)
    return Output("console-password", result, pick_format(fmt, as_json))
