"""System checks: misconfigurations that would silently leave sessions alive, or fail later.

Every REVOCATION_* setting is checked at startup, so a bad value stops
`manage.py check`/`migrate`/`runserver` with a message naming the setting and the
value, instead of failing at its first use in a request or a task.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from . import engines, locks, places, throttling
from .app_settings import AppSettings, app_settings

MIDDLEWARE_PATH = "revocation.middleware.RevocationMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"


# Returned by _parsed() for a value check_app_settings already reports.
_MALFORMED = object()


def _parsed(attr: str) -> Any:
    """Return app setting `attr`, or _MALFORMED if it does not parse."""
    try:
        return getattr(app_settings, attr)
    except ImproperlyConfigured:
        return _MALFORMED


@register()
def check_middleware(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The middleware must be installed, after AuthenticationMiddleware."""
    middleware = list(settings.MIDDLEWARE)
    if MIDDLEWARE_PATH not in middleware:
        return [
            Warning(
                f"'{MIDDLEWARE_PATH}' is not in MIDDLEWARE: session keys rotated by "
                "update_session_auth_hash() or a login over another user are not followed.",
                hint=f"Add it to MIDDLEWARE after '{AUTH_MIDDLEWARE}'.",
                id="revocation.W001",
            )
        ]
    if AUTH_MIDDLEWARE in middleware and middleware.index(MIDDLEWARE_PATH) < middleware.index(
        AUTH_MIDDLEWARE
    ):
        return [
            Error(
                f"'{MIDDLEWARE_PATH}' must come after '{AUTH_MIDDLEWARE}' in MIDDLEWARE.",
                id="revocation.E001",
            )
        ]
    return []


@register()
def check_session_engine(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Signed-cookie sessions have no server state: only the fence can revoke them."""
    if engines.has_server_state() or MIDDLEWARE_PATH in settings.MIDDLEWARE:
        return []
    return [
        Warning(
            "SESSION_ENGINE is signed_cookies and RevocationMiddleware is not installed: "
            "sessions live only in the browser, so a revoked (or stolen) cookie stays valid "
            "until it expires.",
            hint=f"Add '{MIDDLEWARE_PATH}' to MIDDLEWARE; its revocation fence is what "
            "revokes signed-cookie sessions.",
            id="revocation.W002",
        )
    ]


@register()
def check_session_limit_policy(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """REVOCATION_MAX_SESSIONS_POLICY must name a known policy."""
    policy = _parsed("MAX_SESSIONS_POLICY")
    if policy is _MALFORMED or policy in ("revoke_oldest", "refuse"):
        return []
    return [
        Error(
            f"REVOCATION_MAX_SESSIONS_POLICY is {policy!r}; use 'revoke_oldest' or 'refuse'.",
            id="revocation.E002",
        )
    ]


@register()
def check_app_order(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Our clearsessions only shadows Django's when `revocation` is listed first."""
    apps = list(settings.INSTALLED_APPS)
    sessions = "django.contrib.sessions"
    ours = next((a for a in apps if a == "revocation" or a.startswith("revocation.apps.")), None)
    if ours is None or sessions not in apps or apps.index(ours) < apps.index(sessions):
        return []
    return [
        Warning(
            f"'{ours}' comes after '{sessions}' in INSTALLED_APPS, so `manage.py "
            "clearsessions` runs Django's command: unbatched, and it leaves orphaned "
            "user-session mappings behind.",
            hint=f"Move '{ours}' before '{sessions}' in INSTALLED_APPS.",
            id="revocation.W003",
        )
    ]


@register()
def check_app_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Every REVOCATION_* setting must parse: integers in range, strings, a scope mapping."""
    errors: list[CheckMessage] = []
    for attr, value in vars(AppSettings).items():
        if not isinstance(value, property):
            continue
        try:
            getattr(app_settings, attr)
        except ImproperlyConfigured as exc:
            errors.append(Error(str(exc), id="revocation.E003"))
    return errors


@register()
def check_lock_backend(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """REVOCATION_LOCK_BACKEND must name a backend that works with this database and cache."""
    if _parsed("LOCK_BACKEND") is _MALFORMED:
        return []
    try:
        # Builds the lock without taking it: no query, no connection.
        locks.make_lock("revocation.system-check")
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="revocation.E004")]
    return []


@register()
def check_api_rates(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """REVOCATION_API_WRITE_RATE and REVOCATION_API_READ_RATE must read like "20/min"."""
    errors: list[CheckMessage] = []
    for attr in ("API_WRITE_RATE", "API_READ_RATE"):
        rate = _parsed(attr)
        if rate is _MALFORMED:
            continue
        try:
            throttling.parse_rate(rate)
        except ValueError as exc:
            errors.append(Error(f"REVOCATION_{attr} is {rate!r}: {exc}", id="revocation.E005"))
    return errors


@register()
def check_scopes(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Each REVOCATION_SCOPES path must import, and name a callable."""
    scopes = _parsed("SCOPES")
    if scopes is _MALFORMED:
        return []
    errors: list[CheckMessage] = []
    for name, path in scopes.items():
        where = f"REVOCATION_SCOPES[{name!r}] = {path!r}"
        try:
            resolver = import_string(path)
        except Exception as exc:  # whatever the module raises, it cannot resolve a scope
            errors.append(Error(f"{where} cannot be imported: {exc}", id="revocation.E006"))
            continue
        if not callable(resolver):
            errors.append(Error(f"{where} is not callable", id="revocation.E006"))
    return errors


@register()
def check_client_ip_source(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """REVOCATION_CLIENT_IP_HEADER and REVOCATION_TRUSTED_PROXY_COUNT: one source, not both."""
    header, proxies = _parsed("CLIENT_IP_HEADER"), _parsed("TRUSTED_PROXY_COUNT")
    if header is _MALFORMED or proxies is _MALFORMED or not header or not proxies:
        return []
    # A warning, not an error: the header wins, so the count is dead but not dangerous.
    return [
        Warning(
            f"REVOCATION_CLIENT_IP_HEADER is {header!r} and REVOCATION_TRUSTED_PROXY_COUNT "
            f"is {proxies}: the client IP is read from the header alone, and the proxy "
            "count is ignored.",
            hint="Set one of them: the header if your proxy overwrites it, else the count.",
            id="revocation.W004",
        )
    ]


@register()
def check_geoip(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """With GEOIP_PATH set, the geoip2 package and the database must be there."""
    problem = places.status()
    if not problem:
        return []
    return [
        Warning(
            f"GEOIP_PATH is set, but {problem}: sessions are recorded without a place.",
            hint="Install geoip2 and put GeoLite2-City.mmdb (or -Country) at GEOIP_PATH, "
            "or unset GEOIP_PATH.",
            id="revocation.W005",
        )
    ]


@register()
def check_session_limits(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The idle timeout and the lifetime: settings that make one of them do less than it says."""
    idle, lifetime, touch = (_parsed(a) for a in ("IDLE_TIMEOUT", "MAX_LIFETIME", "TOUCH_INTERVAL"))
    if _MALFORMED in (idle, lifetime, touch):
        return []
    warnings: list[CheckMessage] = []
    if idle and touch > idle // 2:
        warnings.append(
            Warning(
                f"REVOCATION_TOUCH_INTERVAL ({touch}) is more than half of "
                f"REVOCATION_IDLE_TIMEOUT ({idle}): activity is stamped every {idle // 2} s "
                f"instead, so a session idle for {idle - idle // 2} s may already be "
                "logged out.",
                hint="The idle timeout is enforced to within the touch interval: set "
                "REVOCATION_TOUCH_INTERVAL to a small part of REVOCATION_IDLE_TIMEOUT "
                "(a tenth: logged out after 90-100% of the timeout).",
                id="revocation.W006",
            )
        )
    if idle and lifetime and lifetime <= idle:
        warnings.append(
            Warning(
                f"REVOCATION_MAX_LIFETIME ({lifetime}) is not longer than "
                f"REVOCATION_IDLE_TIMEOUT ({idle}): the lifetime always ends a session "
                "first, so the idle timeout never does.",
                id="revocation.W007",
            )
        )
    return warnings
