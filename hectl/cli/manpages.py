"""Man pages for every command, generated with click-man (a test extra, not a runtime dependency).

``python -m hectl.cli.scripts --man docs/man`` regenerates the checked-in pages;
a test compares them with a fresh regeneration.
"""

from __future__ import annotations

import copy
import glob
import os
import re
import warnings

import click

from hectl import __version__

# The date in every page header. Fixed, not today (click-man's default, or
# $SOURCE_DATE_EPOCH), so that regeneration is byte-identical on any day and in
# any checkout, shallow CI clones included. It is the date of the commit that
# introduced this CLI contract (hectl 0.1.0): bump it with __version__ at a release.
DATE = "2026-11-24"


def _eager(cmd: click.Command, ctx: click.Context) -> click.Command:
    """A copy of ``cmd``; for a group with its lazy subcommands loaded into ``.commands``.

    click-man 0.6.0 reads ``group.commands`` only (not list_commands/get_command),
    so a LazyGroup would otherwise get a page of its own and none for its commands.
    Copies, because click caches a command's help option on first use and click-man's
    contexts know only '--help': on the real commands, completion scripts generated later
    in the same process would lose '-h'.
    """
    if not isinstance(cmd, click.Group):
        return copy.copy(cmd)
    eager = copy.copy(cmd)
    eager.commands = {}
    for name in cmd.list_commands(ctx):
        sub = cmd.get_command(ctx, name)
        if sub is not None:
            eager.commands[name] = _eager(sub, click.Context(sub, info_name=name, parent=ctx))
    return eager


def write_man_pages(outdir: str) -> list[str]:
    """Write hectl.1 and hectl-COMMAND.1 pages into ``outdir`` (stale hectl pages removed); return their paths."""
    from click_man.core import write_man_pages as click_man_write

    from hectl.cli.root import cli

    os.makedirs(outdir, exist_ok=True)
    for stale in glob.glob(os.path.join(outdir, "hectl*.1")):
        os.unlink(stale)
    with warnings.catch_warnings():
        # click-man 0.6.0 calls click.utils.make_default_short_help, deprecated (it warns under click 8.5).
        warnings.simplefilter("ignore", DeprecationWarning)
        click_man_write(
            "hectl", _eager(cli, click.Context(cli, info_name="hectl")), version=__version__, target_dir=outdir, date=DATE
        )
    pages = sorted(glob.glob(os.path.join(outdir, "hectl*.1")))
    for page in pages:
        with open(page, encoding="utf-8") as f:
            text = f.read()
        # click-man names a nested command's page hectl-ha-run.1 but refers to it as "hectl ha-run(1)".
        text = re.sub(r"\\fB(hectl [\w -]+)\(1\)", lambda m: r"\fB" + m[1].replace(" ", "-") + "(1)", text)
        with open(page, "w", encoding="utf-8") as f:
            f.write(text)
    return pages
