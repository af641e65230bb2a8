"""Writes of the user-to-session link: the UserSession rows and the sign-in stamps."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any

from django.contrib.sessions.backends.base import SessionBase
from django.db import connections, router, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from .. import engines, sql, stamps
from ..models import UserSession


def link_session(
    *,
    old_key: str | None,
    new_key: str | None,
    user_id: int | str | None,
    ip: str | None,
    user_agent: str,
    login_id: str = "",
    device: str = "",
    country: str = "",
    city: str = "",
) -> None:
    """Make the mapping follow a session from `old_key` to `new_key` (either may be None).

    One statement and no transaction of its own for a login (an upsert) or a logout
    (a DELETE); a key rotation is one statement on PostgreSQL, up to three
    elsewhere. None needs a transaction: each statement records a fact that holds
    alone ("the old key is gone", "the new key is this user's"), and a failure
    halfway leaves the new session unlinked, as a failure of the whole would.
    """
    using = router.db_for_write(UserSession)
    dialect = sql.dialect(using)
    with _contained(using):
        if new_key and user_id is not None:
            now = timezone.now()
            row = {
                "user_id": user_id,
                "session_key": new_key,
                "login_id": login_id,
                "created_at": now,
                "last_seen_at": now,
                "ip": ip,
                "user_agent": user_agent,
                # In the same statement: what the client is, worked out by the caller.
                "device": device,
                "country": country,
                "city": city,
            }
            if old_key:
                # A key rotation of the same login keeps its sign-in time (and its row id).
                dialect.move_link(old_key, row)
            else:
                dialect.upsert_link(row)
        elif old_key:
            dialect.delete_link(old_key)


def _contained(using: str) -> AbstractContextManager[Any]:
    """Return a savepoint where a failed statement would abort the caller's transaction.

    In autocommit (Django's default) a failed statement ends alone. Inside a
    transaction (ATOMIC_REQUESTS) PostgreSQL aborts the whole transaction on any
    error, and the login with it, though linking.py logs the error and goes on:
    the savepoint confines it. SQLite and MySQL undo only the failed statement.
    """
    if connections[using].in_atomic_block and sql.dialect(using).failure_aborts_transaction:
        return transaction.atomic(using=using)
    return nullcontext()


def touch_session(
    *,
    session_key: str,
    user_id: int | str,
    ip: str | None,
    user_agent: str,
    now: datetime,
    login_id: str = "",
    device: str = "",
    country: str = "",
    city: str = "",
    keep_device_of: str = "",
) -> None:
    """Record activity on a session; create its mapping if it is missing.

    With `keep_device_of` (the stored prefix of `device`'s browser and system), a
    stored description of that family is kept: `device` knows less than it (no OS
    version: a request without the client hints that the sign-in had).
    """
    fields: dict[str, Any] = {
        "last_seen_at": now,
        "ip": ip,
        "user_agent": user_agent,
        "device": device,
        "country": country,
        "city": city,
    }
    if keep_device_of:
        # Still the one UPDATE: the choice is made by the database, on the stored value.
        fields["device"] = Case(
            When(device__startswith=keep_device_of, then=F("device")), default=Value(device)
        )
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
            device=device,
            country=country,
            city=city,
        )


def stamp_sign_in(session: SessionBase, *, now: float) -> None:
    """Stamp a new sign-in into `session`: its time and a fresh sign-in id.

    No query: the user's groups and scopes are looked up by the fence check, and
    only once a group or scope fence newer than this sign-in exists.
    """
    session[stamps.AUTH_AT] = now
    session[stamps.LOGIN_AT] = now
    session[stamps.SEEN_AT] = now
    session[stamps.LOGIN_ID] = stamps.new_login_id()
    # A new sign-in of the same session (login over another user) looks again.
    session.pop(stamps.SCOPES, None)
    session.pop(stamps.SCOPES_FOR, None)


def ensure_login_id(session: SessionBase) -> str:
    """Return the session's sign-in id, stamping it (and onto its mapping) if not stamped yet."""
    login_id = stamps.login_id(session)
    if login_id and stamps.LOGIN_ID not in session:
        # Signed in before sign-in ids existed: stamp the id derived from its sign-in, so
        # that it stays when the sign-in stamp moves (a kept session's does).
        session[stamps.LOGIN_ID] = login_id
        if session.session_key and engines.has_server_state():
            UserSession.objects.filter(session_key=session.session_key).update(login_id=login_id)
    return login_id


def login_id_of(session_key: str) -> str:
    """Return the sign-in id recorded on the mapping of `session_key`, or ""."""
    found = UserSession.objects.filter(session_key=session_key).values_list("login_id", flat=True)
    return found.first() or ""
