"""A throw-away certificate authority for the lab's TLS between libvirtds (openssl, EC P-256).

Each host gets one directory holding its key and certificate under every name its users look for: libvirtd's
server (``key_file``/``cert_file``/``ca_file`` in libvirtd.conf), libvirt's client for ``qemu+tls://``
(``?pkipath=``: cacert.pem, clientcert.pem, clientkey.pem) and QEMU's migration stream
(``migrate_tls_x509_cert_dir``: ca-cert.pem, server-*.pem, client-*.pem). The certificate names the host's DNS
name and its address (QEMU checks the address the stream goes to) and may serve and be a client. The files are
owned by QEMU's user, mode 0600 for keys: libvirtd (root) and QEMU read them.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

QEMU_USER = "libvirt-qemu"
CERT_NAMES = ("servercert.pem", "clientcert.pem", "server-cert.pem", "client-cert.pem")
KEY_NAMES = ("serverkey.pem", "clientkey.pem", "server-key.pem", "client-key.pem")
CA_NAMES = ("cacert.pem", "ca-cert.pem")
_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def missing() -> str:
    return "" if shutil.which("openssl") else "openssl is not installed"


def _openssl(*argv: str) -> None:
    subprocess.run(["openssl", *argv], check=True, capture_output=True, timeout=60)


class Authority:
    """The lab's CA in ``base``; ``issue`` gives a host its directory."""

    def __init__(self, base: Path) -> None:
        self.base = base
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.key, self.cert = base / "ca-key.pem", base / "ca.pem"
        _openssl("req", "-x509", *_EC, "-keyout", str(self.key), "-out", str(self.cert), "-days", "7",
                 "-subj", "/CN=hectl lab CA", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip

    def issue(self, name: str, address: str, directory: Path) -> Path:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key, csr, cert = directory / "key.pem", directory / "req.csr", directory / "cert.pem"
        _openssl("req", *_EC, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")
        ext = directory / "ext.cnf"
        ext.write_text(
            f"subjectAltName=DNS:{name},IP:{address}\nbasicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n"
        )
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key), "-CAcreateserial",
                 "-out", str(cert), "-days", "7", "-extfile", str(ext))  # fmt: skip
        for n in CERT_NAMES:
            shutil.copyfile(cert, directory / n)
        for n in KEY_NAMES:
            shutil.copyfile(key, directory / n)
        for n in CA_NAMES:
            shutil.copyfile(self.cert, directory / n)
        for scrap in (key, csr, cert, ext):
            scrap.unlink()
        user = pwd.getpwnam(QEMU_USER)
        for path in (directory, *directory.iterdir()):
            os.chown(path, user.pw_uid, user.pw_gid)
            path.chmod(0o700 if path.is_dir() else 0o600 if path.name in KEY_NAMES else 0o644)
        return directory
