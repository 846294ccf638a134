"""``hectl deploy``: deploy the first host, join another (--join), or remove this one (--remove)."""

from __future__ import annotations

import os
import sys

import click

from hectl import config as config_mod
from hectl.cli import completion
from hectl.commands.options import FiniteFloat, HostId, format_options, pick_format, read_cluster_key
from hectl.context import AppContext
from hectl.deploy import answers as answers_mod
from hectl.errors import UsageError, signals_interrupt
from hectl.output import Output, note
from hectl.vm import spec as vmspec

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def _key_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """One option per answer (``--SECTION-KEY VALUE``); a secret only as ``--SECTION-KEY-file FILE``."""
    for key in reversed(answers_mod.KEYS):
        if key.secret:
            fn = click.option(f"{key.flag}-file", key.dest, metavar="FILE", help=f"{key.help} (a root-only file, 0600).")(fn)
        else:
            complete = completion.complete_backends if (key.section, key.name) == ("storage", "type") else None
            words = vmspec.CHOICES.get(key.name) if key.section == "engine_vm" else None
            kind = HostIdText() if (key.section, key.name) == ("host", "id") else click.Choice(words) if words else None
            fn = click.option(
                key.flag,
                key.dest,
                type=kind,
                metavar="VALUE",
                help=f"{key.help}.",
                hidden=key.section not in _SHOWN,
                shell_complete=complete,
            )(fn)
    return fn


class HostIdText(HostId):
    """A host id checked as the other host id options are, kept as text (an answer is text)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return str(super().convert(value, param, ctx))


# Sections whose flags --help lists; the others are documented in docs/configuration.md and docs/deploy.md
# and accepted all the same.
_SHOWN = ("host", "storage", "engine", "engine_vm", "appliance", "cloud_init")


def _storage_options(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"'{item}' is not KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


@click.command("deploy")
@click.option("--answers", "answers_file", metavar="FILE", help="Answers file (INI; docs/deploy.md lists every key).")
@click.option("--answers-out", metavar="FILE", help="Write the effective answers here (secrets left out).")
@click.option("--join", is_flag=True, help="Join a domain deployed by another host (storage and host id only).")
@click.option("--remove", is_flag=True, help="Remove this host from the cluster (refused while the engine runs here).")
@click.option(
    "--cluster-key-file", metavar="FILE",
    help="--join: the cluster key, a root-only copy of the first host's cluster.key (default: a hidden prompt).",
)  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Print the plan with each step's state; change nothing.")
@click.option(
    "--storage-option", "storage_options", multiple=True, metavar="KEY=VALUE", callback=_storage_options,
    help="A backend option of [storage] (path=..., connection=...); repeatable.",
)  # fmt: skip
@click.option(
    "--timeout", type=FiniteFloat(1, 86400), default=600, show_default=True, metavar="SECONDS",
    help="Longest wait of one step (lockspace, engine start, health page).",
)  # fmt: skip
@_key_options
@format_options
@click.pass_obj
def command(
    app: AppContext,
    answers_file: str | None,
    answers_out: str | None,
    join: bool,
    remove: bool,
    cluster_key_file: str | None,
    dry_run: bool,
    storage_options: dict[str, str],
    timeout: float,
    fmt: str,
    as_json: bool,
    **flags: str | None,
) -> Output:
    """Make this host a working HA host: the first one, or (--join) one more; --remove undoes it.

    Deploy runs named, idempotent steps: a re-run after a failure continues
    where it stopped, a re-run after success changes nothing. Answers come
    from --answers FILE, then a flag per key, then (on a terminal) a prompt;
    without a terminal a missing answer is exit 2. Secrets come only from a
    root-only file or a hidden prompt. docs/deploy.md lists every key.
    """
    from hectl.deploy import plan
    from hectl.deploy.steps import Deployment

    if join and remove:
        raise UsageError("--join and --remove exclude each other")
    if cluster_key_file and not join:
        raise UsageError("--cluster-key-file is for --join (the first host makes the key)")
    config_path = config_mod.config_path(app.config_path, app.environ)
    fmt = pick_format(fmt, as_json)
    progress: Callable[[str], None] = lambda line: note(f"deploy: {line}", app.quiet)  # noqa: E731
    if remove:
        if answers_file or answers_out or any(flags.values()) or storage_options:
            raise UsageError("--remove takes no answers: it removes what this host's configuration file describes")
        deployment = Deployment.for_removal(config_path, app.environ, progress)
        steps = deployment.removal_steps()
        mode = "remove"
    else:
        file_values, file_storage = answers_mod.read_file(answers_file) if answers_file else ({}, {})
        flag_values: dict[tuple[str, str], str] = {}
        password = ""
        for key in answers_mod.KEYS:
            given = flags.get(key.dest)
            if given is None:
                continue
            if key.secret:
                password = answers_mod.read_secret_file(given, f"{key.flag}-file")
                given = password
            flag_values[key.section, key.name] = given
        terminal = sys.stdin.isatty() and sys.stderr.isatty()
        prompt = _prompt if terminal else None
        answers = answers_mod.collect(file_values, flag_values, {**file_storage, **storage_options}, join=join, prompt=prompt)
        password = answers.get("cloud_init", "root_password")
        answers = answers._replace(values={k: v for k, v in answers.values.items() if k != ("cloud_init", "root_password")})
        if answers_out:
            _write_answers(answers_out, answers_mod.render(answers))
        deployment = Deployment(
            answers,
            config_path,
            environ=app.environ,
            join=join,
            timeout=timeout,
            progress=progress,
            meter=_meter(progress, app.quiet),
            root_password=password,
            cluster_key=(lambda: read_cluster_key(cluster_key_file)) if join and (cluster_key_file or terminal) else None,
        )
        deployment.validate()
        steps = deployment.steps()
        mode = "join" if join else "deploy"
    data: dict[str, object] = {"mode": mode, "config": config_path, "dry_run": dry_run}
    if dry_run:
        data.update(result="planned", steps=plan.preview(steps))
        return Output("deploy", data, fmt)

    def report(row: dict[str, object]) -> None:
        took = f" in {row['seconds']:.1f} s" if row.get("seconds") else ""
        progress(f"{row['step']}: {row['state']}" + (f" ({row['detail']})" if row["detail"] else "") + took)

    t0 = app.clock.monotonic()
    try:
        with signals_interrupt():
            rows = plan.run(steps, app.clock, report)
    except plan.StepFailed as exc:
        elapsed = round(app.clock.monotonic() - t0, 3)
        data.update(result="failed", failed_step=exc.step, error=exc.message, steps=exc.rows, seconds=elapsed)
        note(f"error: {exc.message}" + (f"\n  hint: {exc.hint}" if exc.hint else ""), False)
        return Output("deploy", data, fmt, exit_code=int(exc.exit_code))
    changed = any(row["state"] == "changed" for row in rows)
    data.update(result={"deploy": "deployed", "join": "joined", "remove": "removed"}[mode] if changed else "unchanged")
    data.update(steps=rows, seconds=round(app.clock.monotonic() - t0, 3))
    return Output("deploy", data, fmt)


def _meter(progress: Callable[[str], None], quiet: bool) -> Callable[[str, float], None]:
    """A long copy's progress: a bar redrawn in place on a terminal, else a line every 10 %."""
    last = [-10.0]

    def meter(what: str, percent: float) -> None:
        if quiet:
            return
        if sys.stderr.isatty():
            done = int(percent // 5)
            end = "\n" if percent >= 100 else ""
            sys.stderr.write(f"\r\x1b[Khectl: deploy: {what} [{'#' * done}{'.' * (20 - done)}] {percent:5.1f} %{end}")
            sys.stderr.flush()
        elif percent >= last[0] + 10 or (percent >= 100 > last[0]):
            last[0] = percent // 10 * 10
            progress(f"{what}: {last[0]:.0f} %")

    return meter


def _prompt(key: answers_mod.Key) -> str:
    value = click.prompt(
        f"[{key.section}] {key.name} ({key.help})", default=key.default or None, hide_input=key.secret, err=True,
        show_default=not key.secret,
    )  # fmt: skip
    return str(value)


def _write_answers(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
