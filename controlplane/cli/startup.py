"""Checks `controlplane run` makes before it writes anything, and the one-line errors for start-up failures.

Start-up is ordered so that a bad input leaves nothing behind (no signing key, no empty database, no admin
token file): first every input is checked with reads only (store URL, files, and that the ports can be
bound), then things are written (database, key, token file), then the listeners start. A port is checked by
binding it the way the real listener will and letting it go again; the real bind a moment later can still
lose a race, and that failure is turned into the same one line (`port_unavailable`).
Alternative rejected: binding the real listeners first and keeping them, which would need the gRPC server
(and with it the token authenticator, and so the signing key) before the inputs that decide them.

Must not: start servers or open stores (that is `run.py`).
"""

from __future__ import annotations

import socket
from pathlib import Path

from controlplane.errors import ControlPlaneError


class StartupError(ControlPlaneError):
    """`controlplane run` cannot start; the message is the one line the operator sees."""


def check_port_free(host: str, port: int, what: str, flag: str) -> None:
    """StartupError if host:port cannot be bound for listening now (in use, not a local address...)."""
    if port == 0:
        return  # any free port: the real bind picks one
    reason = bind_problem(host, port)
    if reason is not None:
        raise StartupError(port_unavailable(what, host, port, flag, reason))


def bind_problem(host: str, port: int) -> str | None:
    """Why host:port cannot be bound (the OS's words), or None if every address it resolves to can be."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return str(exc.strerror)
    for family, kind, proto, _, address in dict.fromkeys(infos):
        with socket.socket(family, kind, proto) as sock:
            # As aiohttp and grpc set it: a connection in TIME_WAIT is not a conflict, a listener is.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
                sock.listen(1)
            except OSError as exc:
                return str(exc.strerror or exc)
    return None


_WILDCARDS = ("", "0.0.0.0", "::")


def check_distinct_listeners(first: tuple[str, int, str], second: tuple[str, int, str]) -> None:
    """Each check above binds and releases, so two listeners asking for the same port both pass them."""
    (host_a, port_a, flag_a), (host_b, port_b, flag_b) = first, second
    overlap = host_a == host_b or host_a in _WILDCARDS or host_b in _WILDCARDS
    if port_a == port_b != 0 and overlap:
        raise StartupError(f"{flag_a} and {flag_b} are both {port_a}: the HTTP API and the ADS server need "
                           "a port each")


def port_unavailable(what: str, host: str, port: int, flag: str, reason: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"cannot listen for the {what} on {shown}:{port}: {reason} (choose another port with {flag})"


def check_directory_of(path: Path, flag: str) -> None:
    """A file to be written at start (`--admin-token-file`) needs an existing directory; none is created."""
    if not path.parent.is_dir():
        raise StartupError(f"{flag} {path}: directory {path.parent} does not exist")
