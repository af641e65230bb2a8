"""What the app stamps into a session's own data, and how to read it back.

Stamps travel with the session through every key change (`cycle_key()` copies
the data), so they name one sign-in for as long as it lasts, whatever its key.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.contrib.auth import SESSION_KEY

# When this sign-in happened (epoch seconds); the fence compares it with fences.
AUTH_AT = "_revocation_auth_at"
# When activity was last recorded, so the mapping is touched at most once per interval;
# the idle timeout counts from it (see lifetimes).
SEEN_AT = "_revocation_seen_at"
# When this sign-in happened, for the absolute lifetime. Not AUTH_AT: that one moves
# forward when a revocation keeps the session ("log out my other sessions").
LOGIN_AT = "_revocation_login_at"
# The group and scope fence keys of the user, looked up when a group or scope fence
# newer than the sign-in appeared (see fences.is_fenced), and that fence's time.
SCOPES = "_revocation_scopes"
SCOPES_FOR = "_revocation_scopes_for"
# A random id of this sign-in: what "keep this session" means across key changes.
LOGIN_ID = "_revocation_login_id"
# Of a derived sign-in id (a fresh one is 22 characters too, token_urlsafe(16)).
LOGIN_ID_LENGTH = 22


def signed_in_at(session: Any) -> float:
    """Return when the session signed in; 0 if unknown (it predates every fence)."""
    return float(session.get(AUTH_AT, 0))


def logged_in_at(session: Any) -> float:
    """Return when this sign-in happened; AUTH_AT if stamped before LOGIN_AT existed, else 0."""
    return float(session.get(LOGIN_AT, session.get(AUTH_AT, 0)))


def seen_at(session: Any) -> float:
    """Return when activity was last stamped; the sign-in if it never was."""
    return float(session.get(SEEN_AT, logged_in_at(session)))


def new_login_id() -> str:
    """Return a fresh sign-in id."""
    return secrets.token_urlsafe(16)


def login_id(session: Any) -> str:
    """Return the session's sign-in id; "" if no user is signed in to it.

    A sign-in from before ids existed gets one derived from its user and sign-in
    time: every copy of it (a signed cookie can be copied) derives the same, so
    one row lists it and one fence ends it. Sessions with no stamps at all
    (signed in before the app was installed) cannot be told apart: one id
    covers all of a user's.
    """
    stamped = session.get(LOGIN_ID)
    if stamped:
        return str(stamped)
    user_id = session.get(SESSION_KEY)
    if user_id is None:
        return ""
    # Not secret (nobody can forge the cookie that carries it), only stable and unique.
    seed = f"{user_id}:{logged_in_at(session)!r}".encode()
    return hashlib.sha256(seed).hexdigest()[:LOGIN_ID_LENGTH]
