"""Human-readable device descriptions from user-agent strings (ua-parser)."""

from __future__ import annotations

from functools import lru_cache

import ua_parser


@lru_cache(maxsize=1024)
def describe(user_agent: str) -> str:
    """Return e.g. "Chrome 120 on Windows 10" for a user-agent string."""
    if not user_agent:
        return "Unknown device"
    result = ua_parser.parse(user_agent)
    browser = result.user_agent
    os_ = result.os
    parts = []
    if browser and browser.family != "Other":
        parts.append(f"{browser.family} {browser.major}" if browser.major else browser.family)
    if os_ and os_.family != "Other":
        parts.append(f"on {os_.family} {os_.major}" if os_.major else f"on {os_.family}")
    return " ".join(parts) or "Unknown device"
