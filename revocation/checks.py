"""System checks: misconfigurations that would silently leave sessions alive."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from . import engines
from .app_settings import app_settings

MIDDLEWARE_PATH = "revocation.middleware.RevocationMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"


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
    policy = app_settings.MAX_SESSIONS_POLICY
    if policy in ("revoke_oldest", "refuse"):
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
