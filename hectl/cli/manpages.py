"""Man pages for every command, generated with click-man (a test extra, not a runtime dependency).

``python -m hectl.cli.scripts --man docs/man`` regenerates the checked-in pages;
a test compares them with a fresh regeneration. Every page ends with EXIT STATUS
(``hectl.errors``), ENVIRONMENT (the variables hectl reads; those of one command
only on its own page and on hectl(1)) and FILES (the defaults of the configuration).
"""

from __future__ import annotations

import copy
import glob
import os
import re
import warnings

import click

from hectl import __version__, config, localstate
from hectl.errors import EXIT_CODE_HELP, NAGIOS_HELP

# The date in every page header. Fixed, not today (click-man's default, or
# $SOURCE_DATE_EPOCH), so that regeneration is byte-identical on any day and in
# any checkout, shallow CI clones included. It is the date of the commit that
# introduced this CLI contract (hectl 0.1.0): bump it with __version__ at a release.
DATE = "2026-11-24"
UNIT = "hectl-ha.service"  # systemd/, installed under lib/systemd/system/ (setup.cfg)


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
    from hectl.cli.scripts import command_tree

    commands = {"-".join(c.path) + ".1": " ".join(c.path[1:]) for c in command_tree()}  # page -> "vm-config set"
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
            f.write(text + _sections(commands.get(os.path.basename(page), "")))
    return pages


def environment() -> list[tuple[str, str, str]]:
    """(variable, the command that reads it or "" for every command, what it does): every variable hectl reads."""
    from hectl.commands.add_console_password import PASSWORD_ENV

    overrides = [
        (var, "", f"Overrides [{section}] {key} of the configuration file.")
        for var, (section, key) in config.ENV_OVERRIDES.items()
    ]
    return [
        ("HECTL_CONFIG", "", f"The configuration file when --config is not given (default: {config.DEFAULT_PATH})."),
        *overrides,
        ("HECTL_DISABLE_PLUGINS", "", "Plugins not to load, comma-separated (hectl plugins lists them)."),
        (PASSWORD_ENV, "add-console-password", "The password, when neither --password-stdin nor --password-file is given."),
        ("SUDO_USER", "set-maintenance", "The user recorded as having set maintenance (sudo's caller; else the login user)."),
        (
            "NOTIFY_SOCKET",
            "ha run",
            "Set by systemd (Type=notify): READY=1 after the first cycle, STATUS=, STOPPING=1.",
        ),
        ("WATCHDOG_USEC", "ha run", "Set by systemd (WatchdogSec=): the loop pings the watchdog while it makes progress."),
        ("WATCHDOG_PID", "ha run", "Set by systemd: the watchdog is this process's only when it names its pid."),
        ("JOURNAL_STREAM", "ha run", "Set by systemd: when it names stderr, log lines carry syslog priorities for the journal."),
    ]


def files() -> list[tuple[str, str]]:
    """(path, what it is) at the configuration's defaults."""
    paths = config.PathsConfig()
    defaults = config.Config(
        source=config.DEFAULT_PATH,
        host=config.HostConfig(id=1, hostname=""),
        storage=config.StorageConfig(),
        paths=paths,
        timeouts=config.TimeoutsConfig(),
        score=config.ScoreConfig(),
    )
    return [
        (config.DEFAULT_PATH, "The configuration ($HECTL_CONFIG or --config choose another)."),
        (paths.state_dir, "Host-local state ([paths] state_dir); never on shared storage."),
        (os.path.join(paths.state_dir, localstate.LOCAL_MAINTENANCE), "This host's local maintenance."),
        (
            os.path.join(paths.state_dir, localstate.AGENT_VIEW),
            "The local agent's view, every cycle (vm-status, explain).",
        ),
        (os.path.join(paths.state_dir, localstate.COMPLETION_CACHE), "Host ids and backend names for shell completion."),
        (defaults.audit_log, "Every maintenance change, one JSON line each ([paths] audit_log)."),
        (defaults.console_log, "The engine VM's serial console log ([vm] console_log)."),
        (
            "lib/systemd/system/" + UNIT,
            "The HA agent's systemd unit, under the installation prefix (/usr/local with pip, /usr with a package).",
        ),
    ]


def _roff(text: str) -> str:
    """Plain text as one roff line: backslashes and hyphens escaped, no leading control character."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text.startswith((".", "'")) else text


def _sections(command: str) -> str:
    """EXIT STATUS, ENVIRONMENT and FILES for the page of ``command`` ("" for hectl(1))."""
    out = [".SH EXIT STATUS"]
    for code, text in EXIT_CODE_HELP.items():
        out += [".TP", f"\\fB{int(code)}\\fP {code.name}", _roff(text)]
    out += [".PP", _roff(NAGIOS_HELP), ".SH ENVIRONMENT"]
    for var, scope, text in environment():
        if scope and command and scope != command:
            continue
        out += [".TP", f"\\fB{var}\\fP" + (f" ({_roff('hectl ' + scope)})" if scope and not command else ""), _roff(text)]
    out.append(".SH FILES")
    for path, text in files():
        out += [".TP", f"\\fI{_roff(path)}\\fP", _roff(text)]
    return "\n".join(out) + "\n"
