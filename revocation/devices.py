"""What device a session comes from: a description that stays true, stored once.

Browsers freeze the OS version in the user agent: "Windows NT 10.0" is Windows
10 or 11, "Mac OS X 10_15_7" every macOS since 2020, Chrome's "Android 10; K"
any Android and Safari 26's "iPhone OS 18_6" iOS 18.6 or 26. A frozen version
is left out, and the real one taken from the User-Agent Client Hints
(Sec-CH-UA-*, Chromium browsers only) when the request carries them. The
browser's own version is left out too: it changes every few weeks, and the
description is kept for the life of the session.

A description is stored (`UserSession.device`) as language-neutral fields,
"browser|os|version|model" ("Chrome|Windows|11|"), and put into words, in the
reader's language, only when shown (`label`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import ua_parser
from django.utils.translation import gettext

# What the login page asks for (Accept-CH). Sec-CH-UA and -Platform come unasked;
# the platform version and the model only after a response asked for them.
HINT_HEADERS = (
    "Sec-CH-UA",
    "Sec-CH-UA-Model",
    "Sec-CH-UA-Platform",
    "Sec-CH-UA-Platform-Version",
)
SEPARATOR = "|"
STORED_MAX_LENGTH = 128
# Each stored field, so that four and their separators fit the column.
_FIELD_MAX_LENGTH = 30
# Longest header value read: a client can send a header of any size.
_HINT_MAX_LENGTH = 256

# ua-parser's family -> the name people know. The device is named apart, so a
# "Mobile" in the browser's name adds nothing.
_BROWSERS = {
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari",
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Android WebView",
    "Edge Mobile": "Edge",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Opera Mobile": "Opera",
}
# Client-hint brands -> the same names.
_BRANDS = {"Google Chrome": "Chrome", "Microsoft Edge": "Edge"}
# The GREASE brand every Chromium sends, spelt differently each time ("Not_A Brand").
_GREASE = re.compile(r"not.?a.?brand", re.IGNORECASE)
_OS = {"Mac OS X": "macOS", "Chrome OS": "ChromeOS", "Other": ""}
_PLATFORMS = {
    "Windows": "Windows",
    "macOS": "macOS",
    "Android": "Android",
    "iOS": "iOS",
    "Linux": "Linux",
    "Chrome OS": "ChromeOS",
    "Chromium OS": "ChromeOS",
}
_BRAND_ITEM = re.compile(r'"((?:[^"\\]|\\.)*)"\s*;\s*v\s*=\s*"(?:[^"\\]|\\.)*"')
_UNSAFE = re.compile(r"[\x00-\x1f\x7f|]")


@dataclass(frozen=True)
class Hints:
    """The User-Agent Client Hints of a request, as the raw header values."""

    brands: str = ""  # Sec-CH-UA
    model: str = ""  # Sec-CH-UA-Model
    platform: str = ""  # Sec-CH-UA-Platform
    platform_version: str = ""  # Sec-CH-UA-Platform-Version


NO_HINTS = Hints()


@dataclass(frozen=True)
class Device:
    """A browser on an OS (with its version when it is known), maybe on a named model."""

    browser: str = ""
    os: str = ""
    version: str = ""
    model: str = ""

    def stored(self) -> str:
        """Return the language-neutral form kept in `UserSession.device` ("" if unknown)."""
        if not (self.browser or self.os or self.model):
            return ""
        fields = (self.browser, self.os, self.version, self.model)
        return SEPARATOR.join(_UNSAFE.sub(" ", f).strip()[:_FIELD_MAX_LENGTH] for f in fields)

    @property
    def settled(self) -> bool:
        """Whether the OS version is known: a later request without client hints knows less."""
        return bool(self.version) or not self.os

    def family(self) -> str:
        """Return the stored prefix shared by every version of this browser on this OS."""
        return self.stored().rsplit(SEPARATOR, 2)[0] + SEPARATOR

    def __str__(self) -> str:
        """Put the description into words, e.g. "Chrome on Windows 11"."""
        os_name = f"{self.os} {self.version}" if self.os and self.version else self.os
        if self.browser and self.model:
            return gettext("%(browser)s on %(model)s (%(os)s)") % {
                "browser": self.browser,
                "model": self.model,
                "os": os_name or gettext("unknown system"),
            }
        if self.browser and os_name:
            return gettext("%(browser)s on %(os)s") % {"browser": self.browser, "os": os_name}
        return self.browser or self.model or os_name or gettext("Unknown device")


def identify(user_agent: str, hints: Hints = NO_HINTS) -> Device:
    """Return the device of a user agent and its client hints."""
    return _identify(user_agent[:512], _bounded(hints))


def stored(text: str) -> Device | None:
    """Return the device of a stored description, or None if it is not one."""
    fields = text.split(SEPARATOR)
    return Device(*fields) if len(fields) == 4 else None


def label(device: str, user_agent: str = "") -> str:
    """Return the stored `device` in words; rows from before it was stored: their user agent."""
    found = stored(device) if device else None
    if found is None:
        # An older row, whose description was never worked out: from its user agent.
        return str(identify(user_agent)) if user_agent or not device else device
    return str(found)


def describe(user_agent: str) -> str:
    """Return e.g. "Firefox on Linux" for a user-agent string alone."""
    return str(identify(user_agent))


def _bounded(hints: Hints) -> Hints:
    """Return `hints` with each value cut to a sane length (they key a cache)."""
    return Hints(*(getattr(hints, f)[:_HINT_MAX_LENGTH] for f in Hints.__dataclass_fields__))


@lru_cache(maxsize=1024)
def _identify(user_agent: str, hints: Hints) -> Device:
    """Return the device; cached, as most sign-ins come from a few dozen browsers."""
    result = ua_parser.parse(user_agent) if user_agent else None
    browser = os_name = version = model = ""
    if result is not None and result.user_agent is not None:
        family = result.user_agent.family
        browser = "" if family == "Other" else _BROWSERS.get(family, family)
    if result is not None and result.os is not None:
        os_name = _OS.get(result.os.family, result.os.family)
        version = _true_version(os_name, result.os, result, browser)
        if os_name == "iOS" and result.device is not None:
            # iPhone, iPad, iPod: the user agent names the model truthfully.
            model = result.device.family
    brand = _brand(hints.brands)
    if brand:
        browser = brand
    platform = _PLATFORMS.get(_string(hints.platform), "")
    if platform:
        if platform != os_name:
            # The user agent claims another system (a desktop-site request on Android,
            # a spoofed or emulated user agent): the hints are the browser's own word.
            os_name, version, model = platform, "", ""
        version = _hinted_version(platform, _string(hints.platform_version)) or version
    hinted_model = _string(hints.model)
    if hinted_model:
        model = hinted_model
    return Device(browser, os_name, version, model)


def _true_version(os_name: str, os_: ua_parser.OS, result: ua_parser.Result, browser: str) -> str:
    """Return the OS version the user agent states, or "" where browsers freeze it."""
    major, minor = os_.major or "", os_.minor or ""
    if os_name == "Windows":
        # NT 10.0 is 10 and 11 alike; older ones (7, 8.1, XP) are what they say.
        return "" if major == "10" else f"{major}.{minor}".strip(".")
    if os_name == "macOS":
        # Every browser says 10.15(.7) on every macOS since 11 (2020).
        return "" if _number(major, minor) >= (10, 15) else f"{major}.{minor}".strip(".")
    if os_name == "iOS":
        if browser == "Safari" and result.user_agent and result.user_agent.major:
            # Safari ships with iOS: its version is the system's, frozen or not.
            return result.user_agent.major
        # Safari 26 says 18_6 (or 18_7) on iOS 26 and on 18.6 alike.
        return "" if _number(major, minor) >= (18, 6) else major
    if os_name == "Android":
        # Chrome's reduced user agent: "Android 10; K" on every device.
        device = result.device.family if result.device else ""
        return "" if (major, device) == ("10", "K") else major
    return ""


def _hinted_version(platform: str, version: str) -> str:
    """Return the OS version that Sec-CH-UA-Platform-Version means on `platform`, or ""."""
    parts = _number(*version.split(".")[:2])
    if not parts:
        return ""
    if platform == "Windows":
        # Windows 10 reports 1 to 10, Windows 11 13 and up; 0 is 7, 8 or 8.1.
        return "11" if parts[0] >= 13 else "10" if parts[0] >= 1 else ""
    if platform == "macOS":
        return f"{parts[0]}.{parts[1]}" if parts[0] == 10 and len(parts) > 1 else str(parts[0])
    if platform in ("Android", "iOS"):
        return str(parts[0])
    # Linux's is the kernel's, ChromeOS's a build number: neither means much to people.
    return ""


def _brand(header: str) -> str:
    """Return the browser named in Sec-CH-UA, e.g. "Chrome"; "" for only Chromium or none."""
    names = [_unquote(n) for n in _BRAND_ITEM.findall(header)]
    names = [n for n in names if n and not _GREASE.search(n)]
    specific = [n for n in names if n != "Chromium"]
    if specific:
        return _BRANDS.get(specific[0], specific[0])
    return "Chromium" if names else ""


def _string(value: str) -> str:
    """Return a structured-header string's content ("Windows" for '"Windows"')."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return _unquote(value[1:-1])
    return ""


def _unquote(text: str) -> str:
    """Undo a structured-header string's backslash escapes."""
    return re.sub(r"\\(.)", r"\1", text)


def _number(*parts: str) -> tuple[int, ...]:
    """Return the leading numeric parts of a version as integers; () if the first is not one."""
    numbers: list[int] = []
    for part in parts:
        if not part.isdigit():
            break
        numbers.append(int(part))
    return tuple(numbers)
