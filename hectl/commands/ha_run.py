"""``hectl ha run``."""

from __future__ import annotations

import logging
import signal
import sys
import threading

import click

from hectl import localstate, notify
from hectl.config import Config
from hectl.context import AppContext
from hectl.errors import HectlError


@click.command("run")
@click.pass_obj
def command(app: AppContext) -> int:
    """Run the HA agent in the foreground (for systemd; logs to stderr).

    SIGTERM or SIGINT stop it after publishing a clean "stopped" record;
    SIGHUP re-reads the configuration. Under systemd (Type=notify) it reports
    readiness and status and pings the watchdog; log lines carry syslog
    priorities when stderr is the journal.
    """
    from hectl.ha import daemon, logs, sdnotify
    from hectl.storage import cluster

    logs.log_to(sys.stderr, logging.DEBUG if app.verbose else logging.WARNING if app.quiet else logging.INFO, app.environ)
    cfg = app.config  # fail early (exit 3) on a bad configuration
    localstate.lock_agent(cfg.paths.state_dir)  # exit 5 when an agent already runs here
    backend = app.backend()
    stop, reload = threading.Event(), threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: reload.set())
    mailer = notify.register(app.plugins, cfg)
    manager = sdnotify.Notifier(app.environ)

    def changed() -> bool:
        """The domain has a newer cluster configuration, signed with this host's key, than the one in force."""
        try:
            shared = cluster.read(backend, app.timeout, app.cluster_key(), app.local_config.cluster_key)
        except HectlError:
            return False  # refused, or the cycle's own storage access reports the problem
        return shared is not None and shared.version > app.cluster_version

    def load() -> Config:
        cfg = app.load_config()
        if app.cluster_problem:  # the domain's copy could not be used: say which one runs
            logging.getLogger("hectl.ha").warning("cluster configuration: %s", app.cluster_problem)
        return cfg

    try:
        daemon.run(load, backend, app.clock, stop, reload, app.plugins, notifier=manager, changed=changed)
    finally:
        manager.close()
    if mailer is not None:
        mailer.wait(cfg.notify.timeout)
    return 0
