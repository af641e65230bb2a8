"""Signal receivers: they only call into linking/services."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.core.exceptions import PermissionDenied
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import HttpRequest

from . import linking, services
from .exceptions import SessionLimitReached


@receiver(user_logged_in, dispatch_uid="revocation.on_login")
def on_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """Enforce the session limit, stamp the login time and link the session to the user."""
    if request is None or not hasattr(request, "session"):
        return
    try:
        services.limit_sessions(user, current_key=request.session.session_key)
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
