"""Keep each UserSession row on the key its session has right now.

Django changes a session key without telling anyone: `login()` cycles it (or
flushes it, leaving the key None when `user_logged_in` fires), and
`update_session_auth_hash()` and the SECRET_KEY_FALLBACKS re-hash inside
`get_user()` cycle it with no signal at all. Rather than chase each path, we
compare keys: `begin()` remembers the key the request arrived with, and
`reconcile()` - run by the `user_logged_in`/`user_logged_out` receivers and
once more by `RevocationMiddleware` after the view - moves, creates or deletes
the mapping whenever the key it last linked differs from the current one.
Any path that changes the key, sync or async, is caught by that comparison.
The key compared is the row's (`engines.Engine.link_key`): the session key,
or for a signed cookie, whose key is the whole cookie, its sign-in id.

Nothing here may break a request: failures are logged, never raised.
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from django.contrib.auth import SESSION_KEY
from django.http import HttpRequest
from django.utils import timezone

from . import engines, lifetimes, privacy, selectors, services, stamps
from .app_settings import app_settings
from .signals import session_linked

logger = logging.getLogger("revocation")
# The clock of the stamps: a name of our own, so a test can move it without patching
# time.time for every module.
clock = time.time

LINKED_KEY_ATTR = "_revocation_linked_key"
PASSWORD_CHANGED_ATTR = "_revocation_password_changed"  # noqa: S105 - an attribute name
# The user who signed in during this request, until their session is linked.
SIGNED_IN_ATTR = "_revocation_signed_in"
# The request being handled, so a password change can find the session to keep.
current_request: ContextVar[HttpRequest | None] = ContextVar("revocation_request", default=None)


def begin(request: HttpRequest) -> None:
    """Remember the link key the request arrived with (loads only a signed cookie)."""
    setattr(request, LINKED_KEY_ATTR, link_key(request.session))
    current_request.set(request)


def link_key(session: Any) -> str | None:
    """Return the key of `session`'s UserSession row (`engines.Engine.link_key`)."""
    return engines.link_key(session)


def end(request: HttpRequest) -> None:
    """Finish the request: revoke other sessions if its user changed their password."""
    user = getattr(request, PASSWORD_CHANGED_ATTR, None)
    try:
        if user is not None:
            _revoke_others(request, user)
    finally:
        current_request.set(None)


def _revoke_others(request: HttpRequest, user: Any) -> None:
    """Revoke every session of `user` but this request's, logging instead of raising."""
    try:
        services.revoke_user_sessions(
            user,
            keep_session=request.session,
            reason="password changed",
            requested_by=user,
        )
    except Exception:
        logger.exception("revocation: could not revoke other sessions of user %s", user.pk)


def password_changed(user: Any) -> None:
    """Revoke the sessions of `user`, whose password was just saved."""
    request = current_request.get()
    request_user = getattr(request, "user", None) if request is not None else None
    if request_user is not None and request_user.is_authenticated and request_user.pk == user.pk:
        # The user changed their own password: keep this session, whose key is only
        # final after update_session_auth_hash(); end() revokes the others.
        setattr(request, PASSWORD_CHANGED_ATTR, user)
        return
    # A reset, an admin, a shell or a command: log the user out everywhere.
    services.revoke_user_sessions(user, reason="password changed")


def session_user_id(session: Any) -> Any:
    """Return the id of the user logged in to `session`, or None."""
    return session.get(SESSION_KEY)


def mark_login(request: HttpRequest, user: Any) -> None:
    """Stamp the sign-in time and id into the session, and link it."""
    services.stamp_sign_in(request.session, now=clock())
    # After a flush() the key is None until the session is saved: the link, and so
    # session_linked, may only come with the middleware's reconcile() after the view.
    setattr(request, SIGNED_IN_ATTR, user)
    reconcile(request)


def reconcile(request: HttpRequest) -> None:
    """Move the mapping to the session's current link key if the key changed."""
    old_key = getattr(request, LINKED_KEY_ATTR, None)
    new_key = link_key(request.session)
    if old_key != new_key:
        _relink(request, old_key, new_key)


def forget(request: HttpRequest) -> None:
    """Drop the link of the current key (logout flushes the session right after)."""
    key = link_key(request.session)
    if key:
        _relink(request, key, None)


def _relink(request: HttpRequest, old_key: str | None, new_key: str | None) -> None:
    """Point the mapping of `old_key` at `new_key`, logging instead of raising."""
    setattr(request, LINKED_KEY_ATTR, new_key)
    if old_key and not engines.has_server_state():
        # A signed cookie's link key is its sign-in id, so it changes only when that
        # sign-in is over (a logout, a new sign-in), never with a key rotation. A copy
        # of the old cookie would stay valid: end that sign-in for good.
        _end_sign_in(old_key)
        old_key = None
        if not new_key:
            return
    user_id = session_user_id(request.session) if new_key else None
    try:
        # Only a link being written needs the client (a logout deletes).
        client = privacy.client_record(request) if new_key else privacy.ClientRecord()
        services.link_session(
            old_key=old_key,
            new_key=new_key,
            user_id=user_id,
            ip=client.ip,
            user_agent=client.user_agent,
            login_id=stamps.login_id(request.session),
            device=client.device,
            country=client.country,
            city=client.city,
        )
    except Exception:
        logger.exception("revocation: could not link session to user %s", user_id)
        return
    if new_key and user_id is not None:
        _announce(request, new_key, user_id)


def _end_sign_in(key: str) -> None:
    """End the signed-cookie sign-in linked under `key`, logging instead of raising."""
    try:
        services.end_sign_in(key)
    except Exception:
        logger.exception("revocation: could not end the sign-in of a signed cookie")


def _announce(request: HttpRequest, key: str, user_id: Any) -> None:
    """Send session_linked if `key` is the session of a sign-in of this request."""
    user = getattr(request, SIGNED_IN_ATTR, None)
    if user is None or user._meta.pk.value_to_string(user) != str(user_id):
        return  # a key rotation of an earlier sign-in, or a session seen for the first time
    delattr(request, SIGNED_IN_ATTR)
    if not session_linked.has_listeners(type(user)):
        return  # the default: not even the row is read
    try:
        row = selectors.linked_session(key)
    except Exception:
        logger.exception("revocation: could not read the new session of user %s", user_id)
        return
    if row is None:
        return  # ended already, by a concurrent request
    results = session_linked.send_robust(type(user), user=user, request=request, session=row)
    for receiver, result in results:
        if isinstance(result, Exception):
            logger.error(
                "revocation: session_linked receiver %r failed for user %s",
                receiver,
                user_id,
                exc_info=result,
            )


def touch(request: HttpRequest, interval: int) -> None:
    """Record activity at most once per `interval` seconds per session.

    The time is stamped into the session and onto its mapping. On signed cookies
    the stamp is a new cookie, so once per interval; a cookie signed in before
    sign-in ids existed is given one, and so its row.
    """
    session = request.session
    user_id = session_user_id(session)
    now = clock()
    if user_id is None or not session.session_key:
        return
    if now - float(session.get(stamps.SEEN_AT, 0)) < interval:
        return
    session[stamps.SEEN_AT] = now
    if not engines.has_server_state():
        services.ensure_login_id(session)
    key = link_key(session)
    if key is None:
        return
    try:
        client = privacy.client_record(request)
        services.touch_session(
            session_key=key,
            user_id=user_id,
            ip=client.ip,
            user_agent=client.user_agent,
            now=timezone.now(),
            login_id=stamps.login_id(session),
            device=client.device,
            country=client.country,
            city=client.city,
            keep_device_of="" if client.settled else client.family,
        )
    except Exception:
        logger.exception("revocation: could not record activity of user %s", user_id)


def expires_at(request: HttpRequest) -> datetime:
    """Return when the request's session ends if this request is its last one.

    The earliest of Django's own expiry and the lifetime limits, with the activity
    stamp this request leaves: touch() stamps it on the way out once it is due.
    """
    session = request.session
    now = clock()
    seen = stamps.seen_at(session)
    interval = lifetimes.activity_interval(
        touch_interval=app_settings.TOUCH_INTERVAL, idle_timeout=app_settings.IDLE_TIMEOUT
    )
    if now - seen >= interval:
        seen = now
    own = session.get_expiry_date()
    end = lifetimes.deadline(logged_in_at=stamps.logged_in_at(session), seen_at=seen)
    return own if end is None else min(own, lifetimes.to_datetime(end))
