"""The engine's cloud-init NoCloud seed: an ISO 9660 volume labelled ``cidata`` with meta-data and user-data.

Built with pycdlib (pure Python; no genisoimage/xorriso and no shell pipeline).
The root password is stored only as a SHA-512 crypt hash, made by
``openssl passwd -6 -stdin`` with the password on its stdin (never on argv).
"""

from __future__ import annotations

import io
import json
import subprocess

from hectl.errors import OperationFailed


def password_hash(password: str, timeout: float = 10.0) -> str:
    """A ``$6$`` crypt hash of ``password``."""
    try:
        proc = subprocess.run(
            ["openssl", "passwd", "-6", "-stdin"], input=password + "\n", capture_output=True, text=True, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OperationFailed(f"cannot hash the engine's root password with openssl: {exc}") from None
    text = proc.stdout.strip()
    if proc.returncode != 0 or not text.startswith("$6$"):
        raise OperationFailed("cannot hash the engine's root password with openssl", hint=proc.stderr.strip()[:200] or None)
    return text


def user_data(hostname: str, fqdn: str, password_hash: str = "", ssh_key: str = "") -> str:
    """``#cloud-config`` user-data (JSON is valid YAML: no hand-quoting of values)."""
    doc: dict[str, object] = {"hostname": hostname.split(".")[0], "fqdn": fqdn or hostname, "manage_etc_hosts": True}
    if password_hash:
        doc.update(ssh_pwauth=False, chpasswd={"expire": False, "users": [{"name": "root", "password": password_hash}]})
    if ssh_key:
        doc.update(users=[{"name": "root", "ssh_authorized_keys": [ssh_key]}], disable_root=False)
    return "#cloud-config\n" + json.dumps(doc, indent=1, sort_keys=True) + "\n"


def seed_iso(instance_id: str, hostname: str, user: str) -> bytes:
    """The NoCloud seed volume's bytes."""
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident="cidata")
    files = {
        "meta-data": json.dumps({"instance-id": instance_id, "local-hostname": hostname}) + "\n",
        "user-data": user,
    }
    for name, text in files.items():
        data = text.encode()
        iso.add_fp(io.BytesIO(data), len(data), f"/{name.upper().replace('-', '_')}.;1", rr_name=name, joliet_path=f"/{name}")
    out = io.BytesIO()
    iso.write_fp(out)
    iso.close()
    return out.getvalue()
