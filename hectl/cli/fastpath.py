"""Fast paths: ``vm-status --json|--check`` and ``__complete`` without loading click.

Cron health checks and TAB completion run often and must start in a few
milliseconds; click alone costs more to import than the whole status read.
This module recognises exactly those invocations and runs them through the
same core code and renderer as the click command. Anything it does not fully
understand (``--help``, table output, an unknown or malformed option) returns
``None`` and the click CLI handles it, errors included. A test keeps the
option table here in step with the click command.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from collections.abc import Sequence

ROOT_VALUE_OPTIONS = frozenset({"--config"})
ROOT_FLAGS = frozenset({"-v", "--verbose", "-q", "--quiet"})
VM_STATUS_VALUE_OPTIONS = frozenset({"--format", "--host-id", "--timeout"})
VM_STATUS_FLAGS = frozenset({"--json", "--check"})


def _split(args: Sequence[str], value_opts: frozenset[str], flags: frozenset[str]) -> tuple[dict[str, list[str]], int] | None:
    """Parse leading options; return (options, index of first non-option) or None if unsure."""
    opts: dict[str, list[str]] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-"):
            break
        name, eq, value = arg.partition("=")
        if name in value_opts:
            if not eq:
                if i + 1 >= len(args):
                    return None
                i += 1
                value = args[i]
            opts.setdefault(name, []).append(value)
        elif arg in flags:
            opts.setdefault(arg, []).append("")
        else:
            return None
        i += 1
    return opts, i


def _vm_status(root: dict[str, list[str]], args: Sequence[str]) -> int | None:
    parsed = _split(args, VM_STATUS_VALUE_OPTIONS, VM_STATUS_FLAGS)
    if parsed is None or parsed[1] != len(args):
        return None
    opts = parsed[0]
    fmt = (opts.get("--format") or ["table"])[-1]
    check = "--check" in opts
    if any(f not in ("json", "table") for f in opts.get("--format", [])):
        return None  # a usage error: click reports it
    if "--json" in opts:
        fmt = "json"
    if fmt == "table" and not check:
        return None  # tables need tabulate and belong to the click path
    from hectl import parse

    try:  # the same parsers and ranges as the click options; click reports bad values
        hosts = frozenset(parse.host_id(h) for h in opts.get("--host-id", []))
        timeout = parse.number(opts["--timeout"][-1], 0.1, 3600) if "--timeout" in opts else None
    except ValueError:
        return None

    from hectl.context import AppContext
    from hectl.output import emit, run
    from hectl.status import vm_status

    app = AppContext(
        config_path=root["--config"][-1] if "--config" in root else None,
        verbose=len(root.get("-v", [])) + len(root.get("--verbose", [])),
        quiet=bool(root.get("-q") or root.get("--quiet")),
    )
    app.storage_timeout = timeout
    app.json_output = fmt == "json"
    return run(
        lambda: emit(vm_status(app, fmt=fmt, check=check, host_filter=hosts), app.quiet),
        lambda: app.verbose,
        lambda: app.json_output,
    )


def _complete(args: Sequence[str]) -> int:
    from hectl.cli.completion import values

    kind = args[0] if args else ""
    incomplete = args[1] if len(args) > 1 else ""
    try:
        for value, description in values(kind, incomplete):
            sys.stdout.write(f"{value}\t{description}\n")
    except Exception:
        pass  # completion never fails loudly
    return 0


def try_run(argv: Sequence[str]) -> int | None:
    """Exit code if handled here, else None (hand over to click)."""
    if argv[:1] == ["__complete"]:
        return _complete(argv[1:])
    parsed = _split(argv, ROOT_VALUE_OPTIONS, ROOT_FLAGS)
    if parsed is None:
        return None
    root, i = parsed
    if argv[i : i + 1] == ["vm-status"]:
        return _vm_status(root, argv[i + 1 :])
    return None
