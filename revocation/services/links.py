"""Writes of the user-to-session link: the UserSession rows and the sign-in stamps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.sessions.backends.base import SessionBase
from django.db import connections, router, transaction
from django.utils import timezone

from .. import engines, stamps
from ..models import UserSession


def link_session(
    *,
    old_key: str | None,
    new_key: str | None,
    user_id: int | str | None,
    ip: str | None,
    user_agent: str,
    login_id: str = "",
) -> None:
    """Make the mapping follow a session from `old_key` to `new_key` (either may be None)."""
    now = timezone.now()
    with transaction.atomic():
        moved = 0
        if old_key and new_key and user_id is not None:
            # A key rotation of the same login keeps its sign-in time.
            moved = UserSession.objects.filter(session_key=old_key, user_id=user_id).update(
                session_key=new_key, last_seen_at=now, ip=ip, user_agent=user_agent
            )
        if old_key and not moved:
            UserSession.objects.filter(session_key=old_key).delete()
        if new_key and user_id is not None and not moved:
            UserSession.objects.bulk_create(
                [
                    UserSession(
                        user_id=user_id,
                        session_key=new_key,
                        login_id=login_id,
                        created_at=now,
                        last_seen_at=now,
                        ip=ip,
                        user_agent=user_agent,
                    )
                ],
                update_conflicts=True,
                unique_fields=_conflict_target(),
                update_fields=[
                    "user",
                    "login_id",
                    "created_at",
                    "last_seen_at",
                    "ip",
                    "user_agent",
                ],
            )


def _conflict_target() -> list[str] | None:
    """Return the upsert's conflict column, or None where the database names none.

    MySQL's ON DUPLICATE KEY UPDATE takes no target (Django refuses unique_fields
    there); it fires on any unique key, and session_key is the only one we insert.
    """
    features = connections[router.db_for_write(UserSession)].features
    return ["session_key"] if features.supports_update_conflicts_with_target else None


def touch_session(
    *,
    session_key: str,
    user_id: int | str,
    ip: str | None,
    user_agent: str,
    now: datetime,
    login_id: str = "",
) -> None:
    """Record activity on a session; create its mapping if it is missing."""
    fields: dict[str, Any] = {"last_seen_at": now, "ip": ip, "user_agent": user_agent}
    if login_id:
        fields["login_id"] = login_id
    updated = UserSession.objects.filter(session_key=session_key, user_id=user_id).update(**fields)
    if not updated:
        # Sessions from before the app was installed get linked on first sight.
        link_session(
            old_key=None,
            new_key=session_key,
            user_id=user_id,
            ip=ip,
            user_agent=user_agent,
            login_id=login_id,
        )


def stamp_sign_in(session: SessionBase, *, now: float) -> None:
    """Stamp a new sign-in into `session`: its time and a fresh sign-in id.

    No query: the user's groups and scopes are looked up by the fence check, and
    only once a group or scope fence newer than this sign-in exists.
    """
    session[stamps.AUTH_AT] = now
    session[stamps.SEEN_AT] = now
    session[stamps.LOGIN_ID] = stamps.new_login_id()
    # A new sign-in of the same session (login over another user) looks again.
    session.pop(stamps.SCOPES, None)
    session.pop(stamps.SCOPES_FOR, None)


def ensure_login_id(session: SessionBase) -> str:
    """Return the session's sign-in id, stamping one (and onto its mapping) if it has none."""
    login_id = stamps.login_id(session)
    if not login_id:
        # Signed in before sign-in ids existed: give it one now.
        login_id = session[stamps.LOGIN_ID] = stamps.new_login_id()
        if session.session_key and engines.has_server_state():
            UserSession.objects.filter(session_key=session.session_key).update(login_id=login_id)
    return login_id


def login_id_of(session_key: str) -> str:
    """Return the sign-in id recorded on the mapping of `session_key`, or ""."""
    found = UserSession.objects.filter(session_key=session_key).values_list("login_id", flat=True)
    return found.first() or ""
