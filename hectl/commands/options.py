"""Option bundles shared by several commands."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from hectl import parse
from hectl.cli import completion
from hectl.context import AppContext
from hectl.output import FORMATS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any, TypeVar

    from click.shell_completion import CompletionItem

    from hectl.storage.clusterkey import ClusterKey

    F = TypeVar("F", bound=Callable[..., Any])


def _note_json(ctx: click.Context, param: click.Parameter, value: object) -> object:
    """Tell the context as soon as JSON is asked for, so that errors from here on are JSON too."""
    if value is True or value == "json":
        app = ctx.find_object(AppContext)
        if app is not None:
            app.json_output = True
    return value


def format_options(fn: F) -> F:
    """``--format table|json`` and its alias ``--json``; the command receives ``fmt``."""
    # eager: known before any other option is checked, so a bad value of another option is a JSON error too
    fn = click.option("--json", "as_json", is_flag=True, is_eager=True, callback=_note_json, help="Same as --format json.")(fn)
    fn = click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        is_eager=True,
        callback=_note_json,
        help="Output format (JSON fields are documented, stable API).",
    )(fn)
    return fn


def pick_format(fmt: str, as_json: bool) -> str:
    return "json" if as_json else fmt


class FiniteFloat(click.FloatRange):
    """The type of every float option: ``hectl.parse.number`` (ASCII, finite: no nan or inf) within ``low..high``."""

    def __init__(self, low: float, high: float) -> None:
        super().__init__(min=low, max=high)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            try:
                value = parse.number(value, self.min, self.max)  # type: ignore[arg-type]
            except ValueError as exc:
                self.fail(f"{value!r} {exc}", param, ctx)
        return super().convert(value, param, ctx)


class HostId(click.IntRange):
    """The type of every host id option: ``hectl.parse.host_id`` (ASCII digits, 1..2000)."""

    def __init__(self) -> None:
        super().__init__(min=1, max=parse.MAX_HOST_ID)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            try:
                value = parse.host_id(value)
            except ValueError as exc:
                self.fail(f"{value!r} {exc}", param, ctx)
        return super().convert(value, param, ctx)


class KeyValue(click.ParamType):
    """``KEY=VALUE`` words; completes the keys (as ``KEY=``) and, after ``KEY=``, the choices of KEY."""

    name = "key=value"

    def __init__(self, keys: Iterable[str], choices: Mapping[str, Iterable[str]]) -> None:
        self.keys = tuple(keys)
        self.choices = {key: tuple(values) for key, values in choices.items()}

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        from click.shell_completion import CompletionItem

        key, sep, value = incomplete.partition("=")
        if not sep:
            return [CompletionItem(f"{k}=") for k in self.keys if k.startswith(key)]
        return [CompletionItem(f"{key}={v}") for v in self.choices.get(key, ()) if v.startswith(value)]


def timeout_option(default_help: str) -> Callable[[F], F]:
    return click.option(
        "--timeout",
        type=FiniteFloat(0.1, 3600),
        metavar="SECONDS",
        help=default_help,
    )


def host_id_option(help_text: str, multiple: bool = False) -> Callable[[F], F]:
    return click.option(
        "--host-id",
        "host_ids",
        type=HostId(),
        multiple=multiple,
        metavar="ID",
        help=help_text,
        shell_complete=completion.complete_host_ids,
    )


def read_cluster_key(key_file: str | None) -> ClusterKey:
    """The key from a private file, or typed at a hidden prompt on a terminal (never from argv)."""
    from hectl.storage.clusterkey import parse as parse_key

    if key_file:
        from hectl import privatefile

        data = privatefile.read(key_file, "cluster key file", limit=4096)
        if data is None:
            from hectl.errors import ConfigError

            raise ConfigError(f"cluster key file {key_file}: no such file")
        return parse_key(data, f"cluster key file {key_file}")
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        from hectl.errors import UsageError

        raise UsageError("give the cluster key in a root-only file (no terminal to prompt on)")
    text = click.prompt("cluster key (64 hexadecimal digits)", hide_input=True, err=True)
    return parse_key(str(text).encode(), "the cluster key typed")
