"""Who is on the other end of a request: client IP (proxy-aware), user agent, client hints."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from django.http.response import HttpResponseBase

from .app_settings import app_settings
from .devices import HINT_HEADERS, Hints

USER_AGENT_MAX_LENGTH = 512


def _valid_ip(value: str) -> str | None:
    """Return `value` if it is an IP address, else None."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def _meta_key(header: str) -> str:
    """Return where WSGI puts request header `header` in request.META."""
    return "HTTP_" + header.upper().replace("-", "_")


def client_ip(request: HttpRequest) -> str | None:
    """Return the client's IP: from the configured header, else through trusted proxies."""
    remote = _valid_ip(request.META.get("REMOTE_ADDR", ""))
    header = app_settings.CLIENT_IP_HEADER
    if header:
        # The proxy in front overwrites the header (the setting says so); a value that is
        # not an address means the request did not come through it.
        return _valid_ip(request.META.get(_meta_key(header), "")) or remote
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


def client_hints(request: HttpRequest) -> Hints:
    """Return the User-Agent Client Hints the request carries (empty where it has none)."""
    meta = request.META
    return Hints(
        brands=str(meta.get("HTTP_SEC_CH_UA", "")),
        model=str(meta.get("HTTP_SEC_CH_UA_MODEL", "")),
        platform=str(meta.get("HTTP_SEC_CH_UA_PLATFORM", "")),
        platform_version=str(meta.get("HTTP_SEC_CH_UA_PLATFORM_VERSION", "")),
    )


View = Callable[..., HttpResponseBase]


def ask_for_client_hints(view: View) -> View:
    """Make `view` (the login page) ask the browser for the client hints that name its device.

    A browser sends the high-entropy hints (the OS version, the phone model) only on
    requests after a response asked for them (Accept-CH): the login form's POST,
    which is where the sign-in is recorded.
    """

    @functools.wraps(view)
    def asking(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        response.headers.setdefault("Accept-CH", ", ".join(HINT_HEADERS))
        return response

    return asking
