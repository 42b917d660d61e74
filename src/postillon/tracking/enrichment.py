"""What Postillon derives from a message's user agent and IP address.

The result is stored on the event as `context.postillon` (never overwriting what the
client sent in `context.device` or `context.os`), and the last one seen on the contact.
Both lookups are cached: within a batch, and across batches, the same browsers and the
same addresses come back again and again.
"""

from __future__ import annotations

import ipaddress
import threading
from functools import lru_cache
from typing import Any

from geoip2fast import GeoIP2Fast
from user_agents import parse as parse_user_agent

ENRICHMENT_KEY = "postillon"
_MAX_USER_AGENT = 1000

_geo_lock = threading.Lock()
_geo: GeoIP2Fast | None = None


def enrich(context: dict[str, Any], fallback_ip: str | None) -> dict[str, Any]:
    """`context` with `context.postillon` = device, os, browser and country where known."""
    derived: dict[str, Any] = {}
    user_agent = context.get("userAgent")
    if isinstance(user_agent, str) and user_agent:
        derived.update(describe_user_agent(user_agent[:_MAX_USER_AGENT]))
    ip = context.get("ip")
    if not isinstance(ip, str) or not ip:
        ip = fallback_ip
    if ip:
        country = country_of(ip)
        if country:
            derived["country"] = country
    if not derived:
        return context
    return {**context, ENRICHMENT_KEY: derived}


@lru_cache(maxsize=4096)
def describe_user_agent(user_agent: str) -> dict[str, str]:
    parsed = parse_user_agent(user_agent)
    if parsed.is_bot:
        device = "bot"
    elif parsed.is_tablet:
        device = "tablet"
    elif parsed.is_mobile:
        device = "mobile"
    elif parsed.is_pc:
        device = "desktop"
    else:
        device = "other"
    described = {"device": device}
    if parsed.os.family and parsed.os.family != "Other":
        described["os"] = " ".join(filter(None, (parsed.os.family, parsed.os.version_string)))
    if parsed.browser.family and parsed.browser.family != "Other":
        major = parsed.browser.version[0] if parsed.browser.version else None
        described["browser"] = " ".join(
            str(part) for part in (parsed.browser.family, major) if part is not None
        )
    return described


@lru_cache(maxsize=65536)
def country_of(ip: str) -> str | None:
    """ISO 3166 country code of a public address; None for private or unknown ones."""
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if not address.is_global:
        return None
    code = _geoip().lookup(str(address)).country_code
    if not code or code == "--" or len(code) != 2:
        return None
    return str(code)


def _geoip() -> GeoIP2Fast:
    """The country database, loaded on first use (it takes a few tens of milliseconds)."""
    global _geo
    with _geo_lock:
        if _geo is None:
            _geo = GeoIP2Fast()
        return _geo
