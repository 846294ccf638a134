"""The click command line: root group, lazy command map, and the bridge to ``output.run``."""

from __future__ import annotations

import importlib
import sys

import click

from hectl import __version__
from hectl.context import AppContext
from hectl.errors import EXIT_CODE_HELP, NAGIOS_HELP, ExitCode
from hectl.output import Output, emit, emit_error, run

# Command name -> "module:attribute". Greppable, import-on-demand (click's LazyGroup recipe).
COMMANDS = {
    "deploy": "hectl.commands.deploy:command",
    "vm-start": "hectl.commands.vm_start:command",
    "vm-shutdown": "hectl.commands.vm_shutdown:command",
    "vm-poweroff": "hectl.commands.vm_poweroff:command",
    "vm-migrate": "hectl.commands.vm_migrate:command",
    "vm-status": "hectl.commands.vm_status:command",
    "set-maintenance": "hectl.commands.set_maintenance:command",
    "add-console-password": "hectl.commands.add_console_password:command",
    "check-liveliness": "hectl.commands.check_liveliness:command",
    "console": "hectl.commands.console:command",
    "vm-config": "hectl.commands.vm_config:group",
    "cluster-config": "hectl.commands.cluster_config:group",
    "ha": "hectl.commands.ha:group",
    "explain": "hectl.commands.explain:command",
    "metrics": "hectl.commands.metrics:command",
    "plugins": "hectl.commands.plugins:command",
    "storage": "hectl.commands.storage:group",
    "fence": "hectl.commands.fence:group",
    "reinitialize-lockspace": "hectl.commands.reinitialize_lockspace:command",
    "clean-metadata": "hectl.commands.clean_metadata:command",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when used."""

    def __init__(self, *args: object, lazy: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, _, attr = self.lazy[name].partition(":")
            cmd = getattr(importlib.import_module(module), attr)
            assert isinstance(cmd, click.Command)
            return cmd
        return super().get_command(ctx, name)


def _exit_code_epilog() -> str:
    lines = ["\b", "Exit codes:"]
    lines += [f"  {int(code):>3}  {text}" for code, text in EXIT_CODE_HELP.items()]
    lines += ["\b", NAGIOS_HELP]
    return "\n".join(lines)


@click.group(cls=LazyGroup, lazy=COMMANDS, epilog=_exit_code_epilog(), context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    metavar="FILE",
    type=click.Path(readable=False),  # checked when read, as for $HECTL_CONFIG: exit 3, not 2
    help="Configuration file [default: $HECTL_CONFIG or /etc/hectl/hectl.conf].",
)
@click.option("-v", "--verbose", count=True, help="More detail on stderr; tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, help="No warnings; no output from commands that only act.")
@click.version_option(__version__, "--version", prog_name="hectl", message="%(prog)s %(version)s")
@click.pass_obj
def cli(app: AppContext, config_path: str | None, verbose: int, quiet: bool) -> None:
    """hectl keeps the self-hosted management VM (the engine) running on exactly one healthy host."""
    app.config_path = config_path
    app.verbose = verbose
    app.quiet = quiet


# Commands whose monitoring mode answers usage errors in Nagios terms: command -> (flag, line prefix).
NAGIOS_MODES = {"vm-status": ("--check", "HECTL"), "check-liveliness": ("--nagios", "LIVELINESS")}


def _nagios_mode(args: list[str]) -> tuple[str, bool] | None:
    """(line prefix, JSON wanted) when ``args`` ask for a Nagios check, else None."""
    for i, arg in enumerate(args):
        if arg in NAGIOS_MODES:
            flag, prefix = NAGIOS_MODES[arg]
            rest = args[i + 1 :]
            if flag not in rest:
                return None
            as_json = any(
                a in ("--json", "--format=json") or (a == "--format" and rest[j + 1 : j + 2] == ["json"])
                for j, a in enumerate(rest)
            )
            return prefix, as_json
    return None


def _usage_error(exc: click.UsageError, args: list[str], as_json: bool) -> int:
    ctx = exc.ctx
    path = ctx.command_path if ctx is not None else "hectl"
    if isinstance(exc, click.exceptions.NoArgsIsHelpError) and ctx is not None:
        click.echo(ctx.get_help(), err=True)
        return int(ExitCode.USAGE)
    message = " ".join(exc.format_message().split())
    nagios = _nagios_mode(args)
    if nagios is not None:  # monitoring reads stdout and Nagios codes: UNKNOWN, with the reason
        from hectl.status import CHECK_NAMES, UNKNOWN
        from hectl.text import nagios_line

        line = nagios_line(f"{nagios[0]} {CHECK_NAMES[UNKNOWN]}", [f"usage: {message} (see '{path} --help')"])
        data = {"status": CHECK_NAMES[UNKNOWN], "code": UNKNOWN, "line": line}
        return emit(Output("check", data, "json" if nagios[1] else "table", UNKNOWN), quiet=False)
    click.echo(f"{path}: error: {message} (see '{path} --help')", err=True)
    if as_json:
        emit_error(int(ExitCode.USAGE), message, f"see '{path} --help'")
    return int(ExitCode.USAGE)


def main(argv: list[str] | None = None, app: AppContext | None = None) -> int:
    """Run the CLI on ``argv``; return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    app = app or AppContext()

    def invoke() -> int:
        # Not cli.main(): it turns KeyboardInterrupt into Abort (exit 1, not 130) and handles
        # EPIPE by itself; here every exception that is not click's own goes to output.run.
        try:
            with cli.make_context("hectl", args, obj=app) as ctx:
                rv = cli.invoke(ctx)
        except click.exceptions.Exit as exc:  # --help, --version
            return int(exc.exit_code)
        except click.UsageError as exc:
            return _usage_error(exc, args, app.json_output)
        except click.ClickException as exc:
            click.echo(f"hectl: error: {exc.format_message()}", err=True)
            if app.json_output:
                emit_error(exc.exit_code, exc.format_message())
            return exc.exit_code
        except click.Abort as exc:  # a prompt got ^C or end of input
            if isinstance(exc.__context__, KeyboardInterrupt):  # ``run`` says what the interrupt left behind
                raise exc.__context__ from None
            click.echo("hectl: aborted", err=True)
            if app.json_output:
                emit_error(int(ExitCode.FAILED), "aborted")
            return int(ExitCode.FAILED)
        if isinstance(rv, Output):
            return emit(rv, app.quiet)
        return int(rv or 0)

    return run(invoke, lambda: app.verbose, lambda: app.json_output)
