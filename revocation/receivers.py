"""Signal receivers: they only call into linking/services."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.core.signals import setting_changed
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import HttpRequest

from . import linking, services
from .app_settings import app_settings
from .exceptions import SessionLimitReached
from .models import UserSession
from .signals import session_linked

NOTICE_UID = "revocation.on_session_linked"


@receiver(user_logged_in, dispatch_uid="revocation.on_login")
def on_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """Enforce the session limit, stamp the login time and link the session to the user."""
    if request is None or not hasattr(request, "session"):
        return
    try:
        services.limit_sessions(user, current_key=linking.link_key(request.session))
    except SessionLimitReached as exc:
        # login() already put the user in the session: undo it before refusing.
        request.session.flush()
        request.user = AnonymousUser()
        raise PermissionDenied(str(exc)) from exc
    linking.mark_login(request, user)


@receiver(user_logged_out, dispatch_uid="revocation.on_logout")
def on_logout(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """Drop the link of the session that is being logged out."""
    if request is not None and hasattr(request, "session"):
        linking.forget(request)


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="revocation.on_user_saved")
def on_user_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    """Revoke sessions when a password changes (set_password() leaves `_password` set)."""
    if not created and getattr(instance, "_password", None) is not None:
        linking.password_changed(instance)


def on_session_linked(
    sender: Any, user: Any, request: HttpRequest | None, session: UserSession, **kwargs: Any
) -> None:
    """E-mail the user about a sign-in from a device or country none of their sessions had."""
    services.notify_new_sign_in(user=user, session=session, request=request)


def connect_notices() -> None:
    """Connect the new sign-in e-mail only while REVOCATION_NEW_SIGN_IN_EMAIL is on.

    Connected, not checked on each login: with no receiver, linking a sign-in reads
    nothing for session_linked (see linking._announce).
    """
    try:
        wanted = app_settings.NEW_SIGN_IN_EMAIL
    except ImproperlyConfigured:
        wanted = False  # reported by system check revocation.E003
    if wanted:
        session_linked.connect(on_session_linked, dispatch_uid=NOTICE_UID)
    else:
        session_linked.disconnect(dispatch_uid=NOTICE_UID)


@receiver(setting_changed, dispatch_uid="revocation.on_setting_changed")
def on_setting_changed(sender: Any, setting: str, **kwargs: Any) -> None:
    """Follow REVOCATION_NEW_SIGN_IN_EMAIL when tests (override_settings) change it."""
    if setting == "REVOCATION_NEW_SIGN_IN_EMAIL":
        connect_notices()


connect_notices()
