"""Address facts shared by validation and generation: is this an IP literal, is it a usable host.

One place for them, so that validation (which decides what may be stored) and generation (STATIC vs
STRICT_DNS clusters, SNI, reachable endpoint addresses) can never disagree about what an IP is. Pure.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

_HOSTNAME: Final = re.compile(
    r"^(?=.{1,253}\Z)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?\Z"
)


def is_ip(host: str) -> bool:
    """True for an IPv4 or IPv6 literal (no brackets, no zone), what Go's `net.ParseIP` (Kuma's check)
    accepts. Python's ipaddress also takes a scope (`fe80::1%eth0`), which neither Go nor Envoy do."""
    if "%" in host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_unspecified_ip(address: str) -> bool:
    """0.0.0.0 or :: (a listen-anywhere address, never a destination); False for names."""
    try:
        return ipaddress.ip_address(address).is_unspecified
    except ValueError:
        return False


def valid_host(host: str) -> bool:
    """An IP address or a DNS name (what Envoy can resolve for a STATIC or STRICT_DNS cluster)."""
    return is_ip(host) or bool(_HOSTNAME.match(host))
