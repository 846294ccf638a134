"""``hectl ha run``."""

from __future__ import annotations

import logging
import signal
import sys
import threading

import click

from hectl import notify
from hectl.context import AppContext


@click.command("run")
@click.pass_obj
def command(app: AppContext) -> int:
    """Run the HA agent in the foreground (for systemd; logs to stderr).

    SIGTERM or SIGINT stop it after publishing a clean "stopped" record;
    SIGHUP re-reads the configuration. Under systemd (Type=notify) it reports
    readiness and status and pings the watchdog; log lines carry syslog
    priorities when stderr is the journal.
    """
    from hectl.config import load
    from hectl.ha import daemon, logs, sdnotify

    logs.log_to(sys.stderr, logging.DEBUG if app.verbose else logging.WARNING if app.quiet else logging.INFO, app.environ)
    cfg = app.config  # fail early (exit 3) on a bad configuration
    backend = app.backend()
    stop, reload = threading.Event(), threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: reload.set())
    mailer = notify.register(app.plugins, cfg)
    manager = sdnotify.Notifier(app.environ)
    try:
        daemon.run(lambda: load(cfg.source, app.environ), backend, app.clock, stop, reload, app.plugins, notifier=manager)
    finally:
        manager.close()
    if mailer is not None:
        mailer.wait(cfg.notify.timeout)
    return 0
