"""Who is on the other end of a request: client IP (proxy-aware) and user agent."""

from __future__ import annotations

import ipaddress

from django.http import HttpRequest

from .app_settings import app_settings

USER_AGENT_MAX_LENGTH = 512


def _valid_ip(value: str) -> str | None:
    """Return `value` if it is an IP address, else None."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str | None:
    """Return the client's IP, trusting X-Forwarded-For only through configured proxies."""
    remote = _valid_ip(request.META.get("REMOTE_ADDR", ""))
    proxies = app_settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        # Without proxies the header is whatever the client chose to send.
        return remote
    hops = [h for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    if len(hops) < proxies:
        # Fewer hops than proxies: the request bypassed them; trust nothing in the header.
        return remote
    # Each trusted proxy appends the address it saw, so the client is `proxies` from the right.
    return _valid_ip(hops[-proxies]) or remote


def user_agent(request: HttpRequest) -> str:
    """Return the request's user agent, truncated to what UserSession stores."""
    return str(request.META.get("HTTP_USER_AGENT", ""))[:USER_AGENT_MAX_LENGTH]
