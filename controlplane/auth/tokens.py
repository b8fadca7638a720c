"""Issue and verify the control plane's tokens: JWTs signed with RS256 by PyJWT.

Two kinds, told apart by `sub`:
- dataplane tokens (`sub: dataplane`, claims `mesh` and `name`) bind an Envoy to one Dataplane, as Kuma's
  dataplane tokens do; the ADS server checks them against the stream's node id;
- admin tokens (`sub: admin`) allow writes through the HTTP API.

Every token has `iss`, `iat`, `exp` and a random `jti` (its id, used to revoke it). Verification pins the
algorithm and issuer and requires every claim; a failure is a `TokenError` whose `reason` is a short
metric label and whose message says what is wrong, never the token itself.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

import jwt

from controlplane.auth.keys import SigningKey
from controlplane.auth.revocation import RevocationList
from controlplane.errors import ControlPlaneError

ISSUER: Final = "controlplane"
ALGORITHM: Final = "RS256"
ADMIN: Final = "admin"
DATAPLANE: Final = "dataplane"
MAX_VALIDITY: Final = timedelta(days=3650)
_REQUIRED: Final = ["iss", "sub", "iat", "exp", "jti"]
_DURATION_PART: Final = re.compile(r"(\d+)(d|h|m|s)")
_UNITS: Final = {"d": 86400, "h": 3600, "m": 60, "s": 1}

Reason = Literal["missing", "malformed", "bad_signature", "expired", "revoked", "wrong_dataplane", "not_admin",
                 "wrong_kind"]


class TokenError(ControlPlaneError):
    """A token that cannot be accepted; `reason` labels the metric, the message is for the client."""

    def __init__(self, reason: Reason, message: str) -> None:
        self.reason: Reason = reason
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class TokenClaims:
    token_id: str
    subject: str
    mesh: str
    name: str
    expires_at: datetime


def parse_duration(text: str) -> timedelta:
    """`24h`, `30m`, `7d`, `1h30m`, `90s` → timedelta; ValueError with the accepted form otherwise."""
    value = text.strip()
    parts = _DURATION_PART.findall(value)
    if not value or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"invalid duration {text!r}: use a number with a unit d, h, m or s, e.g. 24h or 1h30m")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)  # checked before timedelta, which overflows
    if seconds <= 0 or seconds > MAX_VALIDITY.total_seconds():
        raise ValueError(f"invalid duration {text!r}: must be more than 0s and at most {MAX_VALIDITY.days}d")
    return timedelta(seconds=seconds)


class Tokens:
    """Issues and verifies tokens with one signing key; checks the revocation list."""

    def __init__(self, key: SigningKey, revocations: RevocationList | None = None) -> None:
        self._key = key
        self.revocations = revocations if revocations is not None else RevocationList(None)

    def issue_dataplane(self, mesh: str, name: str, valid_for: timedelta) -> str:
        return self._issue(DATAPLANE, valid_for, {"mesh": mesh, "name": name})

    def issue_admin(self, valid_for: timedelta) -> str:
        return self._issue(ADMIN, valid_for, {})

    def _issue(self, subject: str, valid_for: timedelta, extra: dict[str, str]) -> str:
        now = datetime.now(UTC)
        claims = {"iss": ISSUER, "sub": subject, "iat": now, "exp": now + valid_for, "jti": uuid.uuid4().hex,
                  **extra}
        return jwt.encode(claims, self._key.private_key, algorithm=ALGORITHM, headers={"kid": self._key.key_id})

    async def verify(self, token: str) -> TokenClaims:
        """Signature, issuer, expiry, then revocation; TokenError otherwise."""
        claims = self._decode(token)
        if await self.revocations.is_revoked(claims.token_id):
            raise TokenError("revoked", f"token {claims.token_id} has been revoked")
        return claims

    def _decode(self, token: str) -> TokenClaims:
        try:
            payload = jwt.decode(token, self._key.public_key, algorithms=[ALGORITHM], issuer=ISSUER,
                                 options={"require": _REQUIRED})
        except jwt.ExpiredSignatureError:
            raise TokenError("expired", "token has expired") from None
        except jwt.InvalidSignatureError:
            raise TokenError("bad_signature", "token signature is invalid (signed by another key?)") from None
        except jwt.InvalidTokenError as exc:
            raise TokenError("malformed", f"token is not valid: {exc}") from None
        subject, mesh, name = payload.get("sub"), payload.get("mesh", ""), payload.get("name", "")
        if subject not in (ADMIN, DATAPLANE) or not isinstance(mesh, str) or not isinstance(name, str):
            raise TokenError("malformed", "token is not valid: unknown subject or bad claims")
        if subject == DATAPLANE and not name:
            raise TokenError("malformed", "token is not valid: a dataplane token needs a name")
        expires = datetime.fromtimestamp(int(payload["exp"]), UTC)
        return TokenClaims(str(payload["jti"]), subject, mesh, name, expires)


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` value; None when absent or another scheme."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None
