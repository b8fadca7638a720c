"""Token issuing and verification (PyJWT, RS256): the validation matrix, durations, key file, revocation.

The revocation list itself (store-backed, watchers, legacy file import) is tested in test_revocation.py.
"""

from __future__ import annotations

import os
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from controlplane.auth.keys import SigningKey, generate_signing_key, load_or_create_signing_key
from controlplane.auth.revocation import RevocationList
from controlplane.auth.tokens import ISSUER, TokenError, Tokens, bearer_token, parse_duration

KEY = generate_signing_key()
OTHER_KEY = generate_signing_key()
HOUR = timedelta(hours=1)


def tokens(key: SigningKey = KEY, revocations: RevocationList | None = None) -> Tokens:
    return Tokens(key, revocations or RevocationList(None))


def signed(claims: dict[str, object], key: SigningKey = KEY) -> str:
    return jwt.encode(claims, key.private_key, algorithm="RS256")


def base_claims(**overrides: object) -> dict[str, object]:
    now = datetime.now(UTC)
    claims: dict[str, object] = {"iss": ISSUER, "sub": "dataplane", "iat": now, "exp": now + HOUR,
                                 "jti": "0" * 32, "mesh": "default", "name": "web-1"}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


async def test_dataplane_token_round_trip() -> None:
    claims = await tokens().verify(tokens().issue_dataplane("default", "web-1", HOUR))
    assert (claims.subject, claims.mesh, claims.name, len(claims.token_id)) == ("dataplane", "default", "web-1", 32)
    assert timedelta(minutes=59) < claims.expires_at - datetime.now(UTC) <= HOUR


async def test_admin_token_round_trip() -> None:
    claims = await tokens().verify(tokens().issue_admin(HOUR))
    assert (claims.subject, claims.mesh, claims.name) == ("admin", "", "")


def _hs256_with_public_key() -> str:
    """The algorithm-confusion attack: HMAC "signed" with the (public) RSA key as the secret."""
    header = jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT"}')
    body = jwt.utils.base64url_encode(b'{"iss":"controlplane","sub":"admin","iat":1,"exp":9999999999,"jti":"x"}')
    return (header + b"." + body + b".c2lnbmF0dXJl").decode()


def _unsigned() -> str:
    return jwt.encode(base_claims(iat=1, exp=9999999999), key=None, algorithm="none")


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (lambda: signed(base_claims(exp=datetime.now(UTC) - timedelta(seconds=5))), "expired"),
        (lambda: signed(base_claims(), OTHER_KEY), "bad_signature"),
        (lambda: "not-a-token", "malformed"),
        (lambda: "", "malformed"),
        (lambda: signed(base_claims(jti=None)), "malformed"),
        (lambda: signed(base_claims(exp=None)), "malformed"),
        (lambda: signed(base_claims(iss="someone-else")), "malformed"),
        (lambda: signed(base_claims(sub="root")), "malformed"),
        (lambda: signed(base_claims(name="")), "malformed"),
        (lambda: signed(base_claims(mesh=7)), "malformed"),
        (_hs256_with_public_key, "malformed"),
        (_unsigned, "malformed"),
    ],
    ids=["expired", "other-key", "garbage", "empty", "no-jti", "no-exp", "other-issuer", "unknown-subject",
         "dataplane-without-name", "mesh-not-string", "alg-confusion-hs256", "alg-none"],
)
async def test_rejected_tokens(token: object, reason: str) -> None:
    assert callable(token)
    with pytest.raises(TokenError) as caught:
        await tokens().verify(token())
    assert caught.value.reason == reason, str(caught.value)
    assert str(caught.value)


async def test_revoked_token_is_rejected() -> None:
    issuer = tokens(revocations=RevocationList(None))
    token = issuer.issue_dataplane("default", "web-1", HOUR)
    claims = await issuer.verify(token)
    assert await issuer.revocations.revoke(claims.token_id) is True
    with pytest.raises(TokenError) as caught:
        await issuer.verify(token)
    assert (caught.value.reason, str(caught.value)) == ("revoked", f"token {claims.token_id} has been revoked")
    await issuer.verify(issuer.issue_dataplane("default", "web-1", HOUR))  # other tokens are unaffected


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("24h", 86400), ("30m", 1800), ("7d", 604800), ("1h30m", 5400), ("90s", 90), (" 2h ", 7200)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "24", "h", "-1h", "0s", "1.5h", "1w", "24h ago", "99999d",
                                  "99999999999999999999d", "9" * 400 + "s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("header", "token"),
    [(None, None), ("", None), ("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None),
     ("Bearer", None)],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "data" / "key.pem"
    path.parent.mkdir()
    first = load_or_create_signing_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_signing_key(path).key_id == first.key_id
    assert [p.name for p in path.parent.iterdir()] == ["key.pem"]  # no temporary file left behind


def test_missing_directory_is_an_error_not_created(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_or_create_signing_key(tmp_path / "typo" / "key.pem")
    assert list(tmp_path.iterdir()) == []


def test_concurrent_creation_agrees_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    ids: list[str] = []
    threads = [threading.Thread(target=lambda: ids.append(load_or_create_signing_key(path).key_id))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 1 and len(ids) == 8
    assert os.listdir(tmp_path) == ["key.pem"]


def test_bad_key_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_text("not a key")
    with pytest.raises(ValueError, match="not a PEM private key"):
        load_or_create_signing_key(path)
