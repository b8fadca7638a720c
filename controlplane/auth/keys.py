"""The control plane's token signing key: an RSA private key in a PEM file, created on first start.

Where it lives (README "Security"): `--signing-key-file`, by default next to the SQLite database, or in the
working directory for PostgreSQL; replicas on one PostgreSQL must be given the same file. The memory store
gets a key that lives as long as the process, like everything else it holds.

Creation is atomic: the key is written to a temporary file in the same directory (mode 0600) and hard-linked
into place, which fails if another process (a second replica starting at the same moment) got there first;
the loser then reads the winner's key. No process ever reads a half-written key. Must not: sign or verify
(that is `tokens.py`, through PyJWT).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

log = structlog.get_logger(__name__)

DEFAULT_KEY_FILE: Final = "controlplane-signing-key.pem"
KEY_BITS: Final = 2048


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key and the id (`kid`) of its public half: SHA-256 of the public key, 16 hex digits."""

    private_key: rsa.RSAPrivateKey
    key_id: str

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def generate_signing_key() -> SigningKey:
    return _wrap(rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS))


def load_or_create_signing_key(path: Path) -> SigningKey:
    """The key in `path`, created (mode 0600) if the file does not exist yet. Its directory must exist: a
    mistyped path is an error (FileNotFoundError), not a new directory tree."""
    try:
        return load_signing_key(path)
    except FileNotFoundError:
        pass
    key = generate_signing_key()
    fd, temp = tempfile.mkstemp(prefix=".signing-key-", dir=path.parent)  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(key.private_pem())
            out.flush()
            os.fsync(out.fileno())
        os.link(temp, path)
    except FileExistsError:
        return load_signing_key(path)  # another replica created it first: use theirs
    finally:
        os.unlink(temp)
    log.info("signing_key_created", path=str(path), key_id=key.key_id)
    return key


def load_signing_key(path: Path) -> SigningKey:
    """The key in `path` (FileNotFoundError if there is none, ValueError if it is not a usable key)."""
    data = path.read_bytes()
    if path.stat().st_mode & 0o077:
        log.warning("signing_key_readable_by_others", path=str(path), hint=f"chmod 600 {path}")
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except ValueError as exc:
        raise ValueError(f"{path}: not a PEM private key without a password ({exc})") from None
    if not isinstance(private, rsa.RSAPrivateKey):
        raise ValueError(f"{path}: the signing key must be an RSA key (RS256)")  # noqa: TRY004 - a bad file, not a bad call
    return _wrap(private)


def _wrap(private: rsa.RSAPrivateKey) -> SigningKey:
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return SigningKey(private, hashlib.sha256(public).hexdigest()[:16])
