"""``hectl check-liveliness``."""

from __future__ import annotations

import os

import click

from hectl.commands.options import FiniteFloat, format_options, pick_format, timeout_option
from hectl.config import EngineConfig, config_path
from hectl.context import AppContext
from hectl.errors import ConfigError, ExitCode
from hectl.output import Output
from hectl.status import CHECK_NAMES
from hectl.vm import liveliness


@click.command("check-liveliness")
@click.option(
    "--url", metavar="URL", help="The engine's health page [default: [engine] health_url, or built from [engine] fqdn]."
)
@timeout_option("Give up after this long, everything included [default: [engine] health_timeout].")
@click.option(
    "--ca",
    "ca_file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="CA bundle for an https URL [default: [engine] health_ca, else the system's].",
)
@click.option("--nagios", is_flag=True, help="One Nagios-style line; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.")
@click.option(
    "--warn",
    type=FiniteFloat(0, 3600),
    metavar="SECONDS",
    help="With --nagios: WARNING when the healthy answer took longer than this [default: half the timeout].",
)
@format_options
@click.pass_obj
def command(
    app: AppContext,
    url: str | None,
    timeout: float | None,
    ca_file: str | None,
    nagios: bool,
    warn: float | None,
    fmt: str,
    as_json: bool,
) -> Output:
    """Check the engine's health page: healthy when it answers HTTP 200 with "DB Up".

    Exit 0 healthy, 1 not healthy (unreachable, TLS failure, timeout, error
    status), 3 bad configuration. Never takes longer than the timeout. With
    --url, a host without a configuration file needs none.
    """
    if warn is not None and not nagios:
        raise click.BadParameter("only applies with --nagios", param_hint="--warn")
    fmt = pick_format(fmt, as_json)
    try:
        engine = _engine(app, url)
        target = url or engine.url()
        if not target:
            raise ConfigError(f"{app.config.source}: no engine health URL: set [engine] fqdn or health_url", hint="or pass --url")
        seconds = engine.health_timeout if timeout is None else timeout
        result = liveliness.check(target, seconds, engine.health_ca if ca_file is None else ca_file)
    except ConfigError as exc:
        if not nagios:
            raise
        code, line = liveliness.nagios_unknown(exc.message)
        return _check_output(code, line, fmt)
    if nagios:
        code, line = liveliness.nagios(result, seconds, seconds / 2 if warn is None else warn)
        return _check_output(code, line, fmt)
    exit_code = ExitCode.OK if result.healthy else ExitCode.FAILED
    data = {**result._asdict(), "elapsed": round(result.elapsed, 3)}
    return Output("liveliness", data, fmt, exit_code, quiet_text=result.healthy)


def _engine(app: AppContext, url: str | None) -> EngineConfig:
    """``[engine]`` of the configuration; with --url and no configuration file, the defaults."""
    try:
        return app.config.engine
    except ConfigError:
        if url and not os.path.exists(config_path(app.config_path, app.environ)):
            return EngineConfig()
        raise


def _check_output(code: int, line: str, fmt: str) -> Output:
    return Output("check", {"status": CHECK_NAMES[code], "code": code, "line": line}, fmt, code)
