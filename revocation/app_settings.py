"""The app's settings: `REVOCATION_*` in Django settings, else the environment, else a default.

The defaults live here and nowhere else. Every value is parsed by its setting's
type on each access, and a bad one raises ImproperlyConfigured naming the
setting and the value ("REVOCATION_BATCH_SIZE must be a positive integer, got
'abc'"); `revocation.checks` reports the same errors at startup.

In the environment, integers are written in decimal, switches as 1/0, true/false,
yes/no or on/off, and `REVOCATION_SCOPES` as
comma-separated `name=dotted.path` pairs (django-environ's dict syntax), e.g.
`REVOCATION_SCOPES=org=myproject.scopes.org_members,team=myproject.scopes.team_members`.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

T = TypeVar("T")
Parser = Callable[[str, Any], T]


def _integer(name: str, value: Any, *, minimum: int, wanted: str) -> int:
    """Return `value` as an int of at least `minimum`; raise naming setting `name` if it is not."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = int(value.strip())
    if number is None or number < minimum:
        raise ImproperlyConfigured(f"{name} must be {wanted}, got {value!r}")
    return number


def _positive(name: str, value: Any) -> int:
    """Parse a count or a number of seconds that must be 1 or more."""
    return _integer(name, value, minimum=1, wanted="a positive integer")


def _zero_or_more(name: str, value: Any) -> int:
    """Parse a count or a number of seconds where 0 has a meaning (off, unlimited, at once)."""
    return _integer(name, value, minimum=0, wanted="an integer of 0 or more")


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def _boolean(name: str, value: Any) -> bool:
    """Parse a switch: a bool, or in the environment 1/0, true/false, yes/no, on/off."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ImproperlyConfigured(f"{name} must be True or False, got {value!r}")


def _seconds_or_off(name: str, value: Any) -> int:
    """Parse a number of seconds where 0 or None turns the feature off."""
    if value is None:
        return 0
    return _integer(name, value, minimum=0, wanted="an integer of 0 or more (0 or None: off)")


def _text(name: str, value: Any) -> str:
    """Parse a string setting."""
    if not isinstance(value, str):
        raise ImproperlyConfigured(f"{name} must be a string, got {value!r}")
    return value


def _choice(*allowed: str) -> Parser[str]:
    """Return a parser of a string that must be one of `allowed` (any case, spaces trimmed)."""

    def parse(name: str, value: Any) -> str:
        word = value.strip().lower() if isinstance(value, str) else value
        if word not in allowed:
            choices = ", ".join(repr(a) for a in allowed)
            raise ImproperlyConfigured(f"{name} must be one of {choices}, got {value!r}")
        return str(word)

    return parse


# An HTTP field name (RFC 9110 token): what CLIENT_IP_HEADER may name.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _header(name: str, value: Any) -> str:
    """Parse the name of a request header ("" for none), e.g. "CF-Connecting-IP"."""
    text = _text(name, value).strip()
    if text and not _HEADER_NAME.fullmatch(text):
        raise ImproperlyConfigured(
            f"{name} must be the name of an HTTP header such as 'X-Real-IP', got {value!r}"
        )
    return text


def _scopes(name: str, value: Any) -> dict[str, str]:
    """Parse a mapping of scope names to dotted paths, or its `name=path,...` environment form."""
    mapping = _scope_pairs(value) if isinstance(value, str) else value
    if not isinstance(mapping, Mapping) or not all(
        isinstance(scope, str) and scope and isinstance(path, str) and path
        for scope, path in mapping.items()
    ):
        raise ImproperlyConfigured(
            f"{name} must be a mapping of scope names to dotted paths (in the environment: "
            f"name=dotted.path,name2=dotted.path2), got {value!r}"
        )
    return dict(mapping)


def _scope_pairs(value: str) -> dict[str, str] | None:
    """Return the mapping written as `name=path,name2=path2`, or None if it is malformed."""
    if not value.strip():
        return {}
    pairs = [item.partition("=") for item in value.split(",")]
    mapping = {scope.strip(): path.strip() for scope, _, path in pairs}
    if not all(sep for _, sep, _ in pairs) or len(mapping) < len(pairs):
        return None  # an item without "=", or a name given twice
    return mapping


class AppSettings:
    """Typed view of the REVOCATION_* settings, re-read on every access (for override_settings)."""

    def __init__(self, project_settings: Any | None = django_settings) -> None:
        # None reads the environment and the defaults only: what config/settings/base.py
        # may use while Django's settings are still being built.
        self._project = project_settings

    def _read(self, name: str, default: T, parse: Parser[T]) -> T:
        """Return setting `name` parsed: Django settings, else the environment, else `default`."""
        if self._project is not None and hasattr(self._project, name):
            return parse(name, getattr(self._project, name))
        raw = os.environ.get(name)
        return default if raw is None else parse(name, raw)

    @property
    def BATCH_SIZE(self) -> int:
        """Rows handled per batch (and per transaction) by every bulk delete."""
        return self._read("REVOCATION_BATCH_SIZE", 1000, _positive)

    @property
    def SWEEP_INTERVAL(self) -> int:
        """Seconds between two runs of the outbox sweeper."""
        # With STALL_TIMEOUT: a dead worker's job resumes within 60 + 15 s.
        return self._read("REVOCATION_SWEEP_INTERVAL", 15, _positive)

    @property
    def STALL_TIMEOUT(self) -> int:
        """Seconds without progress after which a request is enqueued again."""
        # Every page commits progress, and a page takes well under a second at the
        # default batch size; a job that is only slow gets a harmless duplicate task.
        return self._read("REVOCATION_STALL_TIMEOUT", 60, _zero_or_more)

    @property
    def PAGE_BUDGET_SECONDS(self) -> int:
        """Seconds one task revokes pages before it hands the rest of the job to a new task."""
        # Well below the broker's visibility timeout: a task that runs longer is redelivered.
        return self._read("REVOCATION_PAGE_BUDGET_SECONDS", 20, _zero_or_more)

    @property
    def FANOUT_WIDTH(self) -> int:
        """Key ranges a large request is split into, each carried out by its own task; 1 is off."""
        # About one per worker process: the ranges' pages then run in parallel.
        return self._read("REVOCATION_FANOUT_WIDTH", 4, _positive)

    @property
    def FANOUT_MIN_USERS(self) -> int:
        """Targeted users from which a request is split into FANOUT_WIDTH key ranges."""
        # Below it one task finishes in seconds: the ranges' tasks would only add overhead.
        return self._read("REVOCATION_FANOUT_MIN_USERS", 20000, _positive)

    @property
    def VISIBILITY_TIMEOUT(self) -> int:
        """Seconds Redis waits for an unacknowledged task before delivering it again."""
        # Above the longest task (see PAGE_BUDGET_SECONDS); the project feeds it into
        # Celery's broker transport options.
        return self._read("REVOCATION_VISIBILITY_TIMEOUT", 3600, _positive)

    @property
    def TOUCH_INTERVAL(self) -> int:
        """Seconds between two last-seen updates of one session."""
        return self._read("REVOCATION_TOUCH_INTERVAL", 300, _zero_or_more)

    @property
    def IDLE_TIMEOUT(self) -> int:
        """Seconds without a request after which a session is logged out; 0 is off."""
        # Enforced to within the interval at which activity is stamped (see lifetimes).
        return self._read("REVOCATION_IDLE_TIMEOUT", 0, _seconds_or_off)

    @property
    def MAX_LIFETIME(self) -> int:
        """Seconds after sign-in at which a session is logged out, active or not; 0 is off."""
        return self._read("REVOCATION_MAX_LIFETIME", 0, _seconds_or_off)

    @property
    def TRUSTED_PROXY_COUNT(self) -> int:
        """Number of reverse proxies in front of Django that append to X-Forwarded-For."""
        return self._read("REVOCATION_TRUSTED_PROXY_COUNT", 0, _zero_or_more)

    @property
    def CLIENT_IP_HEADER(self) -> str:
        """Request header holding the client's IP, set by the proxy in front ("" for none)."""
        # Only behind a proxy that overwrites it: a client can send any header it likes.
        return self._read("REVOCATION_CLIENT_IP_HEADER", "", _header)

    @property
    def RECORD_IP(self) -> str:
        """How much of the client's IP a session's link keeps: full, truncated or off."""
        return self._read("REVOCATION_RECORD_IP", "full", _choice("full", "truncated", "off"))

    @property
    def RECORD_USER_AGENT(self) -> str:
        """What a session's link keeps of the user agent: full, device (description only) or off."""
        return self._read("REVOCATION_RECORD_USER_AGENT", "full", _choice("full", "device", "off"))

    @property
    def AUDIT_PERSONAL_DATA_DAYS(self) -> int:
        """Days finished revocation requests keep who asked, why and whom; 0 keeps them."""
        return self._read("REVOCATION_AUDIT_PERSONAL_DATA_DAYS", 0, _zero_or_more)

    @property
    def MAX_SESSIONS_PER_USER(self) -> int:
        """Concurrent sessions allowed per user; 0 means unlimited."""
        return self._read("REVOCATION_MAX_SESSIONS_PER_USER", 0, _zero_or_more)

    @property
    def MAX_SESSIONS_POLICY(self) -> str:
        """What a login beyond the limit does: "revoke_oldest" or "refuse"."""
        return self._read("REVOCATION_MAX_SESSIONS_POLICY", "revoke_oldest", _text)

    @property
    def NEW_SIGN_IN_EMAIL(self) -> bool:
        """E-mail a user signing in from a device or country none of their sessions came from."""
        return self._read("REVOCATION_NEW_SIGN_IN_EMAIL", False, _boolean)

    @property
    def ADMIN_USER_INLINE(self) -> bool:
        """Show a user's sessions on Django's own UserAdmin change page."""
        return self._read("REVOCATION_ADMIN_USER_INLINE", True, _boolean)

    @property
    def SCOPES(self) -> dict[str, str]:
        """Scope name -> dotted path of a callable returning a user-id queryset."""
        return self._read("REVOCATION_SCOPES", {}, _scopes)

    @property
    def FENCE_COPY_MAX_KEYS(self) -> int:
        """Recent fences each web process keeps a local copy of (on Redis); 0 turns the copy off."""
        # About 200 bytes a fence: 100k user fences after a large revocation take ~20 MB.
        return self._read("REVOCATION_FENCE_COPY_MAX_KEYS", 500_000, _zero_or_more)

    @property
    def REQUEST_RETENTION_DAYS(self) -> int:
        """Days finished revocation requests are kept for audit; 0 keeps them forever."""
        return self._read("REVOCATION_REQUEST_RETENTION_DAYS", 90, _zero_or_more)

    @property
    def MAINTENANCE_BATCH_SIZE(self) -> int:
        """Rows per batch (and per transaction) of clearsessions and the orphan prune."""
        return self._read("REVOCATION_MAINTENANCE_BATCH_SIZE", 10000, _positive)

    @property
    def LOCK_BACKEND(self) -> str:
        """Lock keeping maintenance to one run at a time: auto, postgresql, sqlite, redis, cache."""
        return self._read("REVOCATION_LOCK_BACKEND", "auto", _text)

    @property
    def OWNER_CHECK_ROWS(self) -> int:
        """Mapping rows whose session owner each orphan prune verifies (decoding); 0 disables."""
        return self._read("REVOCATION_OWNER_CHECK_ROWS", 20000, _zero_or_more)

    @property
    def API_WRITE_RATE(self) -> str:
        """Revocations one user may start through the API, e.g. "20/min"."""
        return self._read("REVOCATION_API_WRITE_RATE", "20/min", _text)

    @property
    def API_READ_RATE(self) -> str:
        """Reads of revocation status one user may make through the API, e.g. "600/min"."""
        return self._read("REVOCATION_API_READ_RATE", "600/min", _text)


app_settings = AppSettings()
