"""A minimal RFB 3.8 client that performs VNC Authentication, to prove console passwords against a real server.

RFB 3.8 (RFC 6143): the server sends its version, the client answers with its
own; the server lists its security types, the client picks type 2 (VNC
Authentication); the server sends a 16-byte challenge, the client returns it
DES-encrypted with the password as key; the server answers with a
SecurityResult (0: OK), followed on failure by a reason string.
"""

from __future__ import annotations

import socket
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, modes

try:  # cryptography >= 43 keeps DES among the decrepit ciphers
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:
    from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES

VERSION = b"RFB 003.008\n"
VNC_AUTH = 2


def des_key(password: str) -> bytes:
    """The password as VNC's DES key: its first 8 bytes, zero-padded, each byte's bits reversed."""
    raw = password.encode()[:8].ljust(8, b"\0")
    return bytes(int(f"{b:08b}"[::-1], 2) for b in raw)


def vnc_response(password: str, challenge: bytes) -> bytes:
    """The 16-byte challenge DES-ECB-encrypted with the password's key (3DES with K1=K2=K3 is single DES)."""
    encryptor = Cipher(TripleDES(des_key(password) * 3), modes.ECB()).encryptor()
    return encryptor.update(challenge) + encryptor.finalize()


def _recv(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"VNC server closed the connection after {len(data)} of {n} bytes")
        data += chunk
    return data


def _reason(sock: socket.socket) -> str:
    (length,) = struct.unpack(">I", _recv(sock, 4))
    return _recv(sock, length).decode("utf-8", "replace").rstrip("\0")  # QEMU counts the C string's NUL


def vnc_auth(host: str, port: int, password: str, timeout: float = 5.0) -> tuple[bool, str]:
    """Authenticate to the VNC server at ``host:port``: (True, "OK") or (False, the reason).

    Network failures raise ``OSError``: a server that cannot be reached refused nothing.
    """
    with socket.create_connection((host, port), timeout=timeout) as sock:
        server = _recv(sock, 12)
        if not server.startswith(b"RFB ") or server[4:11] < b"003.008":
            return False, f"server speaks {server!r}, not RFB 3.8"
        sock.sendall(VERSION)
        (count,) = _recv(sock, 1)
        if count == 0:
            return False, f"server refused the connection: {_reason(sock)}"
        types = _recv(sock, count)
        if VNC_AUTH not in types:
            return False, f"VNC authentication not offered (security types {list(types)})"
        sock.sendall(bytes([VNC_AUTH]))
        sock.sendall(vnc_response(password, _recv(sock, 16)))
        (result,) = struct.unpack(">I", _recv(sock, 4))
        if result == 0:
            return True, "OK"
        return False, _reason(sock)
