"""The security set-up of `controlplane run`: signing key and tokens, and TLS for both listeners.

Where the signing key lives when `--signing-key-file` is not given: next to the SQLite database
(`sqlite:PATH` → `dirname(PATH)/controlplane-signing-key.pem`), in the working directory for PostgreSQL (give
every replica the same file), and nowhere for the memory store, whose key, like its resources, lives as long
as the process. Revoked token ids live in the store (auth/revocation.py); an old
`controlplane-revoked-tokens.txt` beside the key (where they were kept before) is imported at start.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Final

import grpc
import structlog

from controlplane.auth.keys import (
    DEFAULT_KEY_FILE,
    SigningKey,
    generate_signing_key,
    load_or_create_signing_key,
    load_signing_key,
)
from controlplane.auth.revocation import REVOCATION_FILE, RevocationList, import_revocation_file
from controlplane.auth.tokens import Tokens
from controlplane.cli.output import write_private_file
from controlplane.store.base import Store
from controlplane.store.factory import DEFAULT_SQLITE_PATH

log = structlog.get_logger(__name__)

SIGNING_KEY_ENV: Final = "CONTROLPLANE_SIGNING_KEY_FILE"
ADMIN_TOKEN_VALIDITY: Final = timedelta(days=365)


def signing_key_path(store_url: str, given: Path | None) -> Path | None:
    """Where the key is kept (see the module docstring); None = in memory only."""
    if given is not None:
        return given
    if store_url == "memory":
        return None
    if store_url.startswith("sqlite:"):
        return Path(store_url.removeprefix("sqlite:") or DEFAULT_SQLITE_PATH).parent / DEFAULT_KEY_FILE
    return Path(DEFAULT_KEY_FILE)


def check_signing_key(store_url: str, given: Path | None) -> None:
    """Before anything is written (`run` checks every input first): an existing key must load, and a key
    still to be created must have a directory to go in. ValueError naming the file otherwise."""
    path = signing_key_path(store_url, given)
    if path is None:
        return
    try:
        load_signing_key(path)
    except FileNotFoundError:
        if not path.parent.is_dir():
            raise ValueError(
                f"cannot create the signing key {path}: directory {path.parent} does not exist"
            ) from None
    except OSError as exc:
        raise ValueError(f"cannot read the signing key {path}: {exc.strerror or exc}") from None


def open_signing_key(store_url: str, given: Path | None) -> SigningKey:
    path = signing_key_path(store_url, given)
    if path is None:
        return generate_signing_key()
    try:
        return load_or_create_signing_key(path)
    except OSError as exc:
        raise ValueError(f"cannot read or create the signing key {path}: {exc.strerror or exc}") from None


async def open_tokens(key: SigningKey, store: Store, store_url: str, given: Path | None) -> Tokens:
    """Tokens whose revocations are the store's: the old revocation file beside the key imported first, then
    every revoked id loaded, so a token revoked before this start is refused from the first request."""
    revocations = RevocationList(store)
    path = signing_key_path(store_url, given)
    if path is not None:
        await import_revocation_file(revocations, path.parent / REVOCATION_FILE)
    await revocations.refresh()
    return Tokens(key, revocations)


def write_admin_token(tokens: Tokens, path: Path) -> None:
    """`--admin-token-file`: a fresh admin token (mode 0600) for tools that share the file (docker-compose)."""
    write_private_file(path, tokens.issue_admin(ADMIN_TOKEN_VALIDITY) + "\n")
    log.info("admin_token_written", path=str(path))


@dataclass(frozen=True, slots=True)
class ServerTls:
    """One certificate and key, loaded for both listeners: gRPC (ADS) and aiohttp (API)."""

    grpc_credentials: grpc.ServerCredentials
    ssl_context: ssl.SSLContext


def load_server_tls(cert_file: Path | None, key_file: Path | None) -> ServerTls | None:
    """None without TLS; ValueError (shown by the CLI) for a half-given pair or unreadable files."""
    if cert_file is None and key_file is None:
        return None
    if cert_file is None or key_file is None:
        raise ValueError("TLS needs both --tls-cert-file and --tls-key-file")
    try:
        cert, key = cert_file.read_bytes(), key_file.read_bytes()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load the TLS certificate {cert_file} / key {key_file}: {exc}") from None
    return ServerTls(grpc.ssl_server_credentials([(key, cert)]), context)
