"""The nfs and ctdb backends' options: what is accepted, how it is read, and that nothing can be smuggled."""

from __future__ import annotations

import pytest

from hectl.backends.ctdb.backend import CTDBBackend
from hectl.backends.nfs.backend import NFSBackend
from hectl.clock import SystemClock
from hectl.errors import ConfigError


def test_connections_ipv6_versions_and_options_are_read() -> None:
    b = NFSBackend({"connection": "[2001:db8::1]:/srv/engine", "nfs_version": "4.2", "mount_options": "timeo=100,retrans=3"},
                   SystemClock())  # fmt: skip
    assert (b.conn.server, b.conn.address, b.conn.export, b.conn.version) == (
        "[2001:db8::1]",
        "2001:db8::1",
        "/srv/engine",
        "4.2",
    )
    assert b.mount_options_in_use() == {"timeo": "100", "retrans": "3", "vers": "4.2"}
    assert b.root() == "/run/hectl/mnt/[2001:db8::1]:srv_engine" and not b.is_connected()
    stall = b.stall_budget(1.0)[0]
    assert (stall.layer, stall.seconds) == ("nfs", 10.0)
    assert NFSBackend({"connection": "nfs1.example.org:/"}, SystemClock()).conn.export == "/"
    ctdb = CTDBBackend({"connection": "198.51.100.100:/engine", "ctdb_socket": "/run/ctdb/other.socket"}, SystemClock())
    assert ctdb.describe()["ctdb_socket"] == "/run/ctdb/other.socket" and ctdb.describe()["type"] == "ctdb"


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"connection": "nfs1:/a/./b"}, "connection"),
        ({"connection": "nfs1:/a;rm"}, "connection"),
        ({"connection": "nfs1"}, "connection"),
        ({"connection": "nfs1:/x", "nfs_version": "4.3"}, "nfs_version"),
        ({"connection": "nfs1:/x", "mount_options": "timeo=1,nolock"}, "mount_options"),
        ({"connection": "nfs1:/x", "mount_options": "proto=udp"}, "mount_options"),
        ({"connection": "nfs1:/x", "mount_base": "/run/../etc"}, "mount_base"),
        ({"connection": "nfs1:/x", "ctdb_socket": "/run/ctdb/x"}, "ctdb_socket"),  # not an nfs key
    ],
)
def test_bad_options_name_the_key(options: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        NFSBackend(options, SystemClock())
