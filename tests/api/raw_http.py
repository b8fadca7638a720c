"""One HTTP/1.1 request written byte for byte, for tests that must control every header (Host, Origin, ...).

HTTP client libraries normalise or fill in headers (Host from the URL, a default Content-Type); a browser
attack is about exactly those headers, so the hostile-header tests write the request themselves.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

TIMEOUT_S = 10.0


@dataclass(frozen=True)
class RawReply:
    status: int
    headers: dict[str, str]
    body: Any  # decoded JSON, else text


async def raw_request(port: int, method: str, path: str, headers: dict[str, str] | None = None,
                      body: bytes = b"", *, version: str = "HTTP/1.1") -> RawReply:
    """Send exactly these headers (plus Content-Length when there is a body, and Connection: close)."""
    lines = [f"{method} {path} {version}", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    async with asyncio.timeout(TIMEOUT_S):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            await writer.drain()
            raw = await reader.read()
        finally:
            writer.close()
            await writer.wait_closed()
    head, _, payload = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = dict(line.split(": ", 1) for line in header_lines if ": " in line)
    text = payload.decode(errors="replace")
    try:
        decoded: Any = json.loads(text) if text else None
    except ValueError:
        decoded = text
    return RawReply(int(status_line.split()[1]), parsed, decoded)
